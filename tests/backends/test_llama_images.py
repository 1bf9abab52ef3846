"""The llama_server backend fits a look into a small context: few, small images, each shrunk once."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from operators.backends.base import ChatTurn, LookRequest
from operators.backends.image_fit import (
    ShrinkCache,
    fit_height,
    fit_request,
    jpeg_size,
    shrink_jpeg,
)
from operators.backends.llama_args import api_key, masked_args, secret_args
from operators.encode import encode_jpeg
from pipeline.core.frame import Frame
from pipeline.core.redact import redact
from pipeline.core.verdict import AnswerKind
from tests.support.look_requests import frame, jpeg_bytes


def video_frame(width: int = 1280, height: int = 720) -> Frame:
    """A frame holding a decoder picture (yuv420p), as cameras give them."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 3] = (10, 200, 40)
    video = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    return Frame(
        camera="porch", seq=1, wall_time=0.0, stream_time=None, width=width, height=height,
        video=video,
    )  # fmt: skip


def watch_look(history: int, f: Frame | None = None) -> LookRequest:
    """A look as a watch makes it: a 854x480 JPEG of the frame and full-size history images."""
    f = f or frame()
    turns = tuple(
        ChatTurn(f"Frame captured at 12:00:0{n}.", jpeg_bytes(854, 480, (n * 20, 90, 200)), "{}")
        for n in range(history)
    )
    return LookRequest(
        watch="porch-package",
        camera="porch",
        condition="a package is on the porch",
        frame=f,
        jpeg=encode_jpeg(f, 480, 85),
        user_text="Frame captured at 12:00:09.",
        history=turns,
    )


def chat_images(log_file: Path) -> list[list[tuple[int, int]]]:
    """The image sizes of every chat request the fake server logged."""
    found = re.findall(r"chat: images \d+ sizes (\[.*\])", log_file.read_text())
    return [[tuple(map(int, p)) for p in re.findall(r"\((\d+), (\d+)\)", line)] for line in found]


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1920, 1080), (512, 288), (512, 288)),
        ((480, 640), (512, 288), (216, 288)),
        ((320, 180), (512, 288), (320, 180)),
        ((2000, 200), (512, 288), (510, 51)),
        ((1279, 720), (511, 288), (510, 287)),
    ],
)
def test_shrink_jpeg_fits_the_box_through_the_fast_path(
    size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    h = fit_height(*size, *box)
    for f in (frame(*size), video_frame(*size)):
        got = jpeg_size(shrink_jpeg(f, *box, 40))
        assert got == expected, (f.video is not None, h)
        assert got is not None and got[0] <= box[0] and got[1] <= box[1]


def test_history_keeps_n_images_each_shrunk_once() -> None:
    cache = ShrinkCache()
    first = watch_look(history=4)
    fitted = fit_request(first, 512, 288, 40, history_images=1, cache=cache)
    assert jpeg_size(fitted.jpeg) == (512, 288)
    assert [jpeg_size(t.jpeg) for t in fitted.history] == [None, None, None, (512, 288)]
    assert [t.user_text for t in fitted.history] == [t.user_text for t in first.history]
    assert [t.assistant_text for t in fitted.history] == ["{}"] * 4
    # Next look: the current frame's JPEG is now history; nothing is shrunk again.
    assert first.jpeg is not None
    second = LookRequest(
        watch=first.watch,
        camera=first.camera,
        condition=first.condition,
        frame=first.frame,
        jpeg=first.jpeg,
        history=(*first.history, ChatTurn(first.user_text, first.jpeg, "{}")),
    )
    misses = cache.misses
    again = fit_request(second, 512, 288, 40, history_images=2, cache=cache)
    assert cache.misses == misses  # both history images and the frame came from the cache
    assert again.history[-1].jpeg == fitted.jpeg
    assert again.history[-2].jpeg == fitted.history[-1].jpeg
    assert [t.jpeg is None for t in again.history] == [True, True, True, False, False]


def test_a_jpeg_that_fits_is_sent_as_it_is() -> None:
    small = jpeg_bytes(320, 180)
    req = LookRequest(watch="w", camera="c", condition="x", frame=frame(320, 180), jpeg=small)
    assert fit_request(req, 512, 288, 40, 1, ShrinkCache()).jpeg is small
    only_jpeg = LookRequest(watch="w", camera="c", condition="x", jpeg=jpeg_bytes(1280, 720))
    assert jpeg_size(fit_request(only_jpeg, 512, 288, 40, 1, ShrinkCache()).jpeg) == (512, 288)
    with pytest.raises(ValueError, match="must not be negative"):
        fit_request(req, 512, 288, 40, -1, ShrinkCache())


def test_server_gets_small_frame_and_one_small_history_image(
    make_llama: Any, tmp_path: Path
) -> None:
    backend = make_llama()
    assert backend.judge(watch_look(history=10)).kind is AnswerKind.NOT_MET
    assert chat_images(tmp_path / "logs" / "llama-server.log") == [[(512, 288), (512, 288)]]


def test_history_images_zero_sends_only_the_frame(make_llama: Any, tmp_path: Path) -> None:
    backend = make_llama(history_images=0)
    assert backend.judge(watch_look(history=3, f=video_frame())).kind is AnswerKind.NOT_MET
    assert chat_images(tmp_path / "logs" / "llama-server.log") == [[(512, 288)]]


def test_secret_args_are_found_and_masked(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    keyfile.write_text("file-key-1\nfile-key-2\n")
    args = ["--api-key-file", str(keyfile), "--hf-token", "hf_x1", "--api-key=a1,a2"]
    assert secret_args(args) == ["file-key-1", "file-key-2", "hf_x1", "a1,a2", "a1", "a2"]
    assert masked_args(args) == [
        "--api-key-file",
        str(keyfile),
        "--hf-token",
        "***",
        "--api-key=***",
    ]
    assert api_key(args) == "file-key-1"
    assert api_key(["--api-key"]) is None


def test_api_key_is_used_and_never_written_to_the_log(make_llama: Any, tmp_path: Path) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    backend = make_llama(extra_args=["--no-webui", "--api-key", key])
    assert backend.judge(watch_look(history=0)).kind is AnswerKind.NOT_MET  # a key was sent
    backend.stop()
    text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert key not in text
    assert "--api-key *** --api-key-file " in text  # plus this run's own key, in a file
    assert redact(f"server said {key}") == "server said ***"
