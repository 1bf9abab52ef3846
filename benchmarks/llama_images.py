"""What one llama_server look sends and costs: fitted images against the old full-size history.

Run: ``.venv/bin/python -m benchmarks.llama_images [--quick]``

A watch with the default ``history_turns = 10`` hands the backend its frame,
the frame as a 854x480 JPEG, and ten earlier 854x480 JPEGs. Measured in one
run, on 720p frames decoded from ``tests/footage/vtest.mp4`` (scaled up):

- ``images`` and ``image_kb``: images and base64 kilobytes in one request,
  reference (old: only the frame shrunk to 512x288, history sent as it came)
  against fitted (``fit_request`` with ``history_images = 1``).
- ``backend_ms``: CPU milliseconds the backend spends on images per look in
  steady state: the old ``to_rgb`` + Pillow encode of the frame against
  ``fit_request`` (the frame encoded through ``operators.encode``'s swscale path,
  the history image from the cache).

Medians over the looks; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import av
from PIL import Image

from operators.backends.base import ChatTurn, LookRequest
from operators.backends.image_fit import ShrinkCache, fit_request
from operators.encode import encode_jpeg
from pipeline.core.frame import Frame

FOOTAGE = Path(__file__).resolve().parents[1] / "tests" / "footage" / "vtest.mp4"
BOX = (512, 288)
QUALITY = 40


def _frames(n: int) -> list[Frame]:
    out: list[Frame] = []
    with av.open(str(FOOTAGE)) as container:
        for seq, vf in enumerate(container.decode(video=0)):
            if len(out) >= n:
                break
            if seq % 5:
                continue
            big = vf.reformat(1280, 720, format="yuv420p")
            out.append(
                Frame(camera="c", seq=seq, wall_time=0.0, stream_time=None, width=1280,
                      height=720, video=big)
            )  # fmt: skip
    return out


def _old_shrink(frame: Frame) -> bytes:
    """The backend's former encode: RGB array at the box size, then Pillow."""
    scale = min(1.0, BOX[0] / frame.width, BOX[1] / frame.height)
    w, h = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    buf = io.BytesIO()
    Image.fromarray(frame.to_rgb(w, h)).save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def _payload(request: LookRequest) -> tuple[int, int]:
    images = [t.jpeg for t in request.history if t.jpeg is not None] + [request.jpeg]
    sent = [j for j in images if j is not None]
    return len(sent), sum(len(base64.b64encode(j)) for j in sent)


def main() -> None:
    """Run the looks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer looks")
    args = parser.parse_args()
    looks = 15 if args.quick else 60
    frames = _frames(looks + 10)
    watch_jpegs = [encode_jpeg(f, 480, 85) for f in frames]
    cache = ShrinkCache()
    old_ms: list[float] = []
    new_ms: list[float] = []
    old_pay: list[tuple[int, int]] = []
    new_pay: list[tuple[int, int]] = []
    for i in range(10, 10 + looks):
        history = tuple(
            ChatTurn(f"Frame {k}.", watch_jpegs[k], "{}") for k in range(i - 10, i)
        )  # fmt: skip
        request = LookRequest(
            watch="w", camera="c", condition="x", frame=frames[i], jpeg=watch_jpegs[i],
            user_text=f"Frame {i}.", history=history,
        )  # fmt: skip
        t0 = time.process_time()
        old = replace(request, jpeg=_old_shrink(frames[i]))
        t1 = time.process_time()
        new = fit_request(request, *BOX, QUALITY, history_images=1, cache=cache)
        t2 = time.process_time()
        if i > 10:  # the first look fills the cache
            old_ms.append((t1 - t0) * 1000)
            new_ms.append((t2 - t1) * 1000)
        old_pay.append(_payload(old))
        new_pay.append(_payload(new))
    result = {
        "looks": looks,
        "images_ref": statistics.median(p[0] for p in old_pay),
        "images": statistics.median(p[0] for p in new_pay),
        "image_kb_ref": round(statistics.median(p[1] for p in old_pay) / 1024, 1),
        "image_kb": round(statistics.median(p[1] for p in new_pay) / 1024, 1),
        "backend_ms_ref": round(statistics.median(old_ms), 2),
        "backend_ms": round(statistics.median(new_ms), 2),
        "cache_hits": cache.hits,
        "cache_misses": cache.misses,
    }
    result["image_kb_ratio"] = round(result["image_kb_ref"] / result["image_kb"], 1)
    result["backend_ms_ratio"] = round(result["backend_ms_ref"] / result["backend_ms"], 2)
    for key, value in result.items():
        print(f"{key:>18}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
