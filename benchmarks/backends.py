"""Backend throughput and overhead: scripted server (50 ms per answer), real llama-server.

    .venv/bin/python -m benchmarks.backends [--quick]

1. 20 watches share one ``openai`` backend with concurrency limits 1 and 4;
   looks per second achieved against the ideal (limit / 0.05 s) and against a
   reference measured in the same run: bare ``http.client`` keep-alive loops
   (limit threads, no Lookout code) on the same server.
2. Lookout's own overhead per look for an 854x480 JPEG: building the request
   (messages with the base64 data URL, JSON body) plus parsing the answer, in
   ms; reference: ``base64.b64encode`` of the same JPEG alone.
3. The real llama.cpp ``llama-server`` with the tiny vision model (tests/fixtures/tiny-vlm; the
   binary from ``scripts/build-llama-server`` or ``$LOOKOUT_LLAMA_SERVER``), its answer fixed by a
   JSON schema of constants so every request generates the same tokens: Lookout's overhead per
   look (median over pairs of ``judge``'s latency minus that of the same request body sent
   with bare ``http.client``, one for one), and the looks per second of 20 watches at
   ``--parallel 1`` and ``2`` (``max_concurrency`` alike) against N times the single-slot
   throughput of bare ``http.client`` requests to the same server (and against bare
   ``http.client`` with N connections), in interleaved one-second windows of the same run.
   On a machine with fewer cores than slots plus the server's threads, N slots cannot give
   N times the throughput, for bare requests either.

Last printed line: one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image

from operators.answer_parser import parse_answer
from operators.backends.base import ChatTurn, LookRequest
from operators.backends.openai import OpenAIBackend
from operators.backends.prompt import (
    ANSWER_SCHEMA,
    build_messages,
    build_system_prompt,
    system_prompt_for,
)
from pipeline.core.config import OpenAIBackendConfig
from tests.support.llama import LlamaServer, find_llama_server
from tests.support.model_server import Reply, ScriptedModelServer

ANSWER_S = 0.05
WATCHES = 20
ANSWER = json.dumps(
    {"condition_met": False, "next_run_in": 5, "reasoning": "The porch is empty.",
     "notification_message": ""}
)  # fmt: skip


def camera_jpeg(width: int = 854, height: int = 480) -> bytes:
    """A camera-like 854x480 JPEG at quality 85 (gradients plus mild noise)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def watch_request(jpeg: bytes, watch: str = "w0") -> LookRequest:
    """The look every benchmark watch makes."""
    return LookRequest(watch=watch, camera="porch", condition="a package is on the porch",
                       jpeg=jpeg, user_text="Frame captured at 12:00:00.")  # fmt: skip


def run_watches(backend: OpenAIBackend, jpeg: bytes, seconds: float) -> int:
    """Run WATCHES threads judging in a loop for ``seconds``; return the looks completed."""
    stop = threading.Event()
    counts = [0] * WATCHES

    def watch(i: int) -> None:
        req = watch_request(jpeg, f"w{i}")
        while not stop.is_set():
            ok = backend.judge(req).kind.value == "not_met"
            if ok and time.monotonic() < deadline:  # looks finished after the window don't count
                counts[i] += 1

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(WATCHES)]
    deadline = time.monotonic() + seconds
    for t in threads:
        t.start()
    time.sleep(max(0.0, deadline - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(30)
    return sum(counts)


def run_reference(
    server: ScriptedModelServer | LlamaServer, body: bytes, limit: int, seconds: float
) -> int:
    """Bare http.client keep-alive loops, ``limit`` threads, same body; return requests done."""
    stop = threading.Event()
    counts = [0] * limit

    def loop(i: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            while not stop.is_set():
                conn.request("POST", "/v1/chat/completions", body=body,
                             headers={"Content-Type": "application/json"})  # fmt: skip
                resp = conn.getresponse()
                resp.read()
                if time.monotonic() < deadline:
                    counts[i] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(limit)]
    deadline = time.monotonic() + seconds
    for t in threads:
        t.start()
    time.sleep(max(0.0, deadline - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(30)
    return sum(counts)


def overhead(jpeg: bytes, iterations: int) -> dict[str, float]:
    """Median ms of request build + parse, and of base64 alone."""
    history = tuple(ChatTurn(f"Frame captured at 12:00:0{i}.", None, ANSWER) for i in range(3))
    req = LookRequest(watch="w", camera="porch", condition="a package is on the porch",
                      labels=("person",), jpeg=jpeg, user_text="Frame captured at 12:00:05.",
                      history=history)  # fmt: skip
    look_ms: list[float] = []
    ref_ms: list[float] = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        messages = build_messages(req, build_system_prompt(req.condition, req.labels))
        fmt = {"type": "json_schema", "json_schema": {"schema": ANSWER_SCHEMA}}
        body = orjson.dumps(
            {"model": "m", "messages": messages, "max_tokens": 300, "response_format": fmt}
        )
        verdict = parse_answer(ANSWER)
        t1 = time.perf_counter()
        base64.b64encode(jpeg)
        t2 = time.perf_counter()
        assert body and verdict.kind.value == "not_met"
        look_ms.append((t1 - t0) * 1000)
        ref_ms.append((t2 - t1) * 1000)
    return {"overhead_ms": statistics.median(look_ms), "base64_ms": statistics.median(ref_ms)}


#: ``extra_body`` that fixes the tiny model's whole answer: every request generates alike.
CONSTANT_ANSWER: dict[str, Any] = {
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "watch_answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {k: {"const": v} for k, v in json.loads(ANSWER).items()},
                "required": list(json.loads(ANSWER)),
                "additionalProperties": False,
            },
        },
    }
}


def llama_backend(server: LlamaServer, limit: int) -> OpenAIBackend:
    """An ``openai`` backend at the real server, answers fixed by :data:`CONSTANT_ANSWER`."""
    cfg = OpenAIBackendConfig(base_url=server.openai_base_url, max_concurrency=limit,
                              extra_body=CONSTANT_ANSWER, retries=0)  # fmt: skip
    backend = OpenAIBackend("llama", cfg)
    backend.start()
    return backend


def llama_body(backend: OpenAIBackend, jpeg: bytes) -> bytes:
    """The request body Lookout sends for :func:`watch_request` (for the bare reference)."""
    req = watch_request(jpeg)
    cfg = backend.config
    body = {"model": backend.model or "default",
            "messages": build_messages(req, system_prompt_for(req)),
            "max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "stream": False,
            **cfg.extra_body}  # fmt: skip
    return orjson.dumps(body)


def llama_overhead(server: LlamaServer, backend: OpenAIBackend, jpeg: bytes, n: int) -> float:
    """Median over ``n`` pairs of (Lookout look ms - the same body over bare http.client ms).

    The two run one for one, so a busy machine slows both alike.
    """
    body = llama_body(backend, jpeg)
    req = watch_request(jpeg)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    diffs: list[float] = []
    try:
        for i in range(n + 3):  # the first three warm both paths up
            t0 = time.perf_counter()
            verdict = backend.judge(req)
            t1 = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", body=body,
                         headers={"Content-Type": "application/json"})  # fmt: skip
            resp = conn.getresponse()
            raw = resp.read()
            t2 = time.perf_counter()
            assert verdict.kind.value == "not_met", verdict
            assert resp.status == 200 and parse_answer(_content(raw)).kind.value == "not_met"
            if i >= 3:
                diffs.append(((t1 - t0) - (t2 - t1)) * 1000)
    finally:
        conn.close()
    return statistics.median(diffs)


def _content(raw: bytes) -> str:
    return str(orjson.loads(raw)["choices"][0]["message"]["content"])


def llama_rates(
    server: LlamaServer,
    backend: OpenAIBackend,
    jpeg: bytes,
    parallel: int,
    window: float,
    rounds: int,
) -> tuple[float, float, float]:
    """Looks/s of Lookout, bare http.client with ``parallel`` and with 1 connection.

    Measured in ``rounds`` interleaved windows of ``window`` seconds each, so that a
    machine busy with other work slows all three alike.
    """
    body = llama_body(backend, jpeg)
    looks = raw = single = 0
    for _ in range(rounds):
        looks += run_watches(backend, jpeg, window)
        raw += run_reference(server, body, parallel, window)
        single += run_reference(server, body, 1, window)
    seconds = window * rounds
    return looks / seconds, raw / seconds, single / seconds


def real_llama(jpeg: bytes, window: float, rounds: int, looks: int) -> dict[str, Any]:
    """Section 3: the real llama-server at --parallel 1 and 2 (see the module docstring)."""
    binary = find_llama_server()
    out: dict[str, Any] = {"binary": str(binary), "window_s": window, "rounds": rounds}
    workdir = Path(tempfile.mkdtemp(prefix="lookout-bench-llama-"))
    try:
        for parallel in (1, 2):
            with LlamaServer(binary, parallel=parallel, workdir=workdir / f"p{parallel}") as server:
                backend = llama_backend(server, parallel)
                try:
                    if parallel == 1:
                        out["overhead_ms"] = round(llama_overhead(server, backend, jpeg, looks), 3)
                    rate, raw, single = llama_rates(server, backend, jpeg, parallel, window, rounds)
                    in_flight = backend.stats.max_in_flight
                finally:
                    backend.stop()
            reference = parallel * single
            out[f"parallel{parallel}"] = {
                "looks_per_s": round(rate, 2),
                "reference_per_s": round(reference, 2),
                "of_reference": round(rate / reference, 3) if reference else None,
                "single_slot_per_s": round(single, 2),
                "bare_http_per_s": round(raw, 2),
                "max_in_flight": in_flight,
            }
            print(f"llama-server --parallel {parallel}: {rate:.1f} looks/s; {parallel} x "
                  f"single-slot bare http.client {reference:.1f}/s ({rate / reference:.0%}); "
                  f"bare http.client, {parallel} connection(s) {raw:.1f}/s",
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"llama-server overhead per look (Lookout minus bare http.client, median of {looks} "
          f"pairs): {out['overhead_ms']:.2f} ms", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 25 s in all)")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 8.0
    jpeg = camera_jpeg()
    result: dict[str, Any] = {"jpeg_bytes": len(jpeg), "answer_s": ANSWER_S, "watches": WATCHES}
    with ScriptedModelServer(default=Reply(ANSWER, delay=ANSWER_S)) as server:
        messages = build_messages(
            LookRequest(watch="w", camera="c", condition="x", jpeg=jpeg), "system"
        )
        body = orjson.dumps({"model": "m", "messages": messages})
        for limit in (1, 4):
            cfg = OpenAIBackendConfig(base_url=server.base_url, max_concurrency=limit,
                                      response_format="json_object")  # fmt: skip
            backend = OpenAIBackend("bench", cfg)
            backend.start()
            looks = run_watches(backend, jpeg, seconds)
            backend.stop()
            server.reset()
            ref = run_reference(server, body, limit, seconds)
            rate, ref_rate, ideal = looks / seconds, ref / seconds, limit / ANSWER_S
            result[f"limit{limit}"] = {
                "looks_per_s": round(rate, 2),
                "ideal_per_s": ideal,
                "of_ideal": round(rate / ideal, 3),
                "reference_per_s": round(ref_rate, 2),
                "of_reference": round(rate / ref_rate, 3) if ref_rate else None,
                "max_in_flight": backend.stats.max_in_flight,
            }
            print(f"limit {limit}: {rate:.1f} looks/s, ideal {ideal:.0f}/s ({rate / ideal:.0%}), "
                  f"bare http.client {ref_rate:.1f}/s, max in flight {backend.stats.max_in_flight}",
                  flush=True)  # fmt: skip
    ov = overhead(jpeg, 100 if args.quick else 500)
    result.update({k: round(v, 3) for k, v in ov.items()})
    result["overhead_vs_base64"] = round(ov["overhead_ms"] / ov["base64_ms"], 2)
    print(f"overhead per look (build + parse, {len(jpeg)} B JPEG): {ov['overhead_ms']:.3f} ms "
          f"median; base64 alone {ov['base64_ms']:.3f} ms")  # fmt: skip
    try:
        rounds = 4 if args.quick else 10
        result["llama_server"] = real_llama(jpeg, 1.0, rounds, 40 if args.quick else 200)
    except RuntimeError as exc:  # no binary and no way to build one here
        result["llama_server"] = {"skipped": str(exc)}
        print(f"llama-server: skipped ({exc})", flush=True)
    result["targets_met"] = bool(
        result["limit1"]["of_ideal"] >= 0.9
        and result["limit4"]["of_ideal"] >= 0.9
        and ov["overhead_ms"] < 2.0
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
