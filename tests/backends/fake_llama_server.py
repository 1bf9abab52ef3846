"""A stand-in for llama-server: accepts its command line and serves its HTTP API.

No model weights can be downloaded here, so the managed-server tests run this
instead. It checks the files it is given, prints a llama.cpp-like log, answers
``/health`` with 503 while "loading", then serves the OpenAI API through
``ScriptedModelServer``. Behaviour from the environment:

- ``FAKE_LLAMA_LOAD_S``: seconds of "loading" (default 0.3).
- ``FAKE_LLAMA_CRASH_ON``: exit with code 3 on this chat request (1-based).
- ``FAKE_LLAMA_REPLY``: the content of every answer.
- ``FAKE_LLAMA_BIND_DELAY_S``: seconds before it binds its port (default 0).

Each chat request prints ``chat: images N sizes [(w, h), ...]`` (the images it
carried, oldest first), so tests can check what the backend sent. With
``--api-key`` (several, comma-separated) or ``--api-key-file`` (one a line)
every request but ``/health`` needs one of the keys as a bearer token (as
llama-server; no key is printed). A port that is taken ends it with
llama-server's own words ("couldn't bind HTTP server socket"), exit code 1.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.model_server import Reply, ScriptedModelServer, Step


def image_sizes(body: Any) -> list[tuple[int, int]]:
    """Return the (width, height) of every image in a chat request, in order."""
    from PIL import Image

    sizes: list[tuple[int, int]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get("type") == "image_url":
                data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as image:
                    sizes.append(image.size)
    return sizes


def main() -> int:
    p = argparse.ArgumentParser(prog="llama-server")
    p.add_argument("-m", "--model", required=True)
    p.add_argument("--mmproj")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("-c", "--ctx-size", type=int, default=4096)
    p.add_argument("-ngl", "--n-gpu-layers", type=int, default=0)
    p.add_argument("-t", "--threads", type=int)
    p.add_argument("--api-key")
    p.add_argument("--api-key-file")
    args, extra = p.parse_known_args()
    for path in (args.model, args.mmproj):
        if path is not None and not Path(path).is_file():
            print(f"error: failed to open {path}", flush=True)
            return 1
    print(f"main: loading model '{args.model}' ctx {args.ctx_size} extra {extra}", flush=True)
    crash_on = int(os.environ.get("FAKE_LLAMA_CRASH_ON", "0"))
    reply = os.environ.get(
        "FAKE_LLAMA_REPLY", '{"condition_met": false, "next_run_in": 9, "reasoning": "fake"}'
    )
    count = [0]

    def responder(body: Any) -> Step:
        count[0] += 1
        sizes = image_sizes(body)
        print(f"chat: images {len(sizes)} sizes {sizes}", flush=True)
        if crash_on and count[0] >= crash_on:
            print("GGML_ASSERT: fake crash", flush=True)
            os._exit(3)
        return Reply(reply)

    keys = [k.strip() for k in (args.api_key or "").split(",") if k.strip()]
    if args.api_key_file:
        keys += [k.strip() for k in Path(args.api_key_file).read_text().splitlines() if k.strip()]
    server = ScriptedModelServer(
        responder=responder,
        port=args.port,
        model_id=Path(args.model).name,
        vision=bool(args.mmproj),
    )
    server.more_api_keys = keys
    server.public_paths = {"/health", "/v1/health"}
    server.healthy = False
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    time.sleep(float(os.environ.get("FAKE_LLAMA_BIND_DELAY_S", "0")))
    try:
        server.start()
    except OSError as exc:
        print(f"start: couldn't bind HTTP server socket, port: {args.port} ({exc})", flush=True)
        return 1
    try:
        time.sleep(float(os.environ.get("FAKE_LLAMA_LOAD_S", "0.3")))
        server.healthy = True
        print(f"main: server is listening on http://{args.host}:{server.port}", flush=True)
        while not stop.wait(0.1):
            pass
    finally:
        server.stop()
    print("main: exiting on signal", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
