"""Backend throughput and overhead against the scripted server (50 ms per answer).

    .venv/bin/python -m benchmarks.backends [--quick]

1. 20 watches share one ``openai`` backend with concurrency limits 1 and 4;
   looks per second achieved against the ideal (limit / 0.05 s) and against a
   reference measured in the same run: bare ``http.client`` keep-alive loops
   (limit threads, no Lookout code) on the same server.
2. Lookout's own overhead per look for an 854x480 JPEG: building the request
   (messages with the base64 data URL, JSON body) plus parsing the answer, in
   ms; reference: ``base64.b64encode`` of the same JPEG alone.

Last printed line: one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import statistics
import threading
import time
from typing import Any

import numpy as np
import orjson
from PIL import Image

from operators.answer_parser import parse_answer
from operators.backends.base import ChatTurn, LookRequest
from operators.backends.openai import OpenAIBackend
from operators.backends.prompt import ANSWER_SCHEMA, build_messages, build_system_prompt
from pipeline.core.config import OpenAIBackendConfig
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


def run_watches(backend: OpenAIBackend, jpeg: bytes, seconds: float) -> int:
    """Run WATCHES threads judging in a loop for ``seconds``; return the looks completed."""
    stop = threading.Event()
    counts = [0] * WATCHES

    def watch(i: int) -> None:
        req = LookRequest(watch=f"w{i}", camera="porch", condition="a package is on the porch",
                          jpeg=jpeg, user_text="Frame captured at 12:00:00.")  # fmt: skip
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


def run_reference(server: ScriptedModelServer, body: bytes, limit: int, seconds: float) -> int:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 10 s in all)")
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
    result["targets_met"] = bool(
        result["limit1"]["of_ideal"] >= 0.9
        and result["limit4"]["of_ideal"] >= 0.9
        and ov["overhead_ms"] < 2.0
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
