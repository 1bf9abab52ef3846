"""The clip zero-shot backend on tiny encoders and a tiny BPE vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from operators.backends.base import LookRequest
from operators.backends.clip import ClipBackend, default_prompts
from operators.backends.clip_tokenizer import ClipTokenizer
from pipeline.core.config import ClipBackendConfig
from pipeline.core.frame import Frame
from pipeline.core.verdict import AnswerKind
from tests.support.tiny_models import clip_encoders, clip_tokenizer_files


@pytest.fixture
def clip_files(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, int]]:
    vocab = clip_tokenizer_files(tmp_path / "tok")
    image, text = clip_encoders(tmp_path / "enc", vocab)
    return image, text, tmp_path / "tok", vocab


def frame(colour: tuple[int, int, int]) -> Frame:
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[:] = colour
    return Frame(
        camera="yard", seq=1, wall_time=0.0, stream_time=None, width=32, height=24, rgb=rgb
    )


def test_tokenizer_merges_words_and_pads(
    clip_files: tuple[Path, Path, Path, dict[str, int]],
) -> None:
    _, _, folder, vocab = clip_files
    tok = ClipTokenizer.from_path(folder)
    ids = tok.encode("Red  BLUE!", context_length=8)
    assert ids == [
        vocab["<|startoftext|>"], vocab["red</w>"], vocab["blue</w>"], vocab["!</w>"],
        vocab["<|endoftext|>"], 0, 0, 0,
    ]  # fmt: skip
    assert ClipTokenizer.from_path(folder / "tokenizer.json").encode("Red  BLUE!", 8) == ids
    assert tok.encode("red " * 20, context_length=6)[-1] == vocab["<|endoftext|>"]
    assert tok.tokens("rex") == [vocab["re"], vocab["x</w>"]]


def test_zero_shot_decides_by_margin(clip_files: tuple[Path, Path, Path, dict[str, int]]) -> None:
    image, text, folder, _ = clip_files
    cfg = ClipBackendConfig(
        image_encoder=image, text_encoder=text, tokenizer=folder, input_size=8,
        positive_prompts=["red"], negative_prompts=["blue"], margin=0.2,
    )  # fmt: skip
    backend = ClipBackend("clip", cfg)
    assert backend.availability().available
    req = LookRequest(
        watch="w", camera="yard", condition="the red door is open", frame=frame((255, 0, 0))
    )
    met = backend.judge(req)
    assert met.kind is AnswerKind.MET and met.confidence is not None and met.confidence > 0.99
    assert met.notification_message == "the red door is open (yard)"
    blue = backend.judge(
        LookRequest(watch="w", camera="yard", condition="x", frame=frame((0, 0, 255)))
    )
    assert (
        blue.kind is AnswerKind.NOT_MET and blue.confidence is not None and blue.confidence < 0.01
    )
    assert "'red'" in blue.reasoning and "'blue'" in blue.reasoning
    # Magenta is closer to red than to blue, but by less than 0.2: the margin decides.
    magenta = LookRequest(watch="w", camera="yard", condition="x", frame=frame((255, 0, 200)))
    forming = backend.judge(magenta)
    assert not forming.condition_met and forming.next_run_in == 3.0  # positive, below margin
    lenient = ClipBackend("clip", cfg.model_copy(update={"margin": 0.02}))
    assert lenient.judge(magenta).condition_met


def test_default_prompts_come_from_the_condition(
    clip_files: tuple[Path, Path, Path, dict[str, int]],
) -> None:
    image, text, folder, _ = clip_files
    backend = ClipBackend(
        "clip",
        ClipBackendConfig(image_encoder=image, text_encoder=text, tokenizer=folder, input_size=8),
    )
    v = backend.judge(
        LookRequest(watch="w", camera="yard", condition="red", frame=frame((255, 0, 0)))
    )
    assert v.kind in (AnswerKind.MET, AnswerKind.NOT_MET)
    assert "'red'" in v.reasoning or "'a photo of red'" in v.reasoning
    pos, neg = default_prompts("a dog on the sofa.")
    assert pos == ["a dog on the sofa", "a photo of a dog on the sofa"] and len(neg) == 2


def test_missing_files_are_unavailable(tmp_path: Path) -> None:
    cfg = ClipBackendConfig(
        image_encoder=tmp_path / "i.onnx", text_encoder=tmp_path / "t.onnx", tokenizer=tmp_path
    )
    backend = ClipBackend("clip", cfg)
    assert not backend.availability().available
    v = backend.judge(LookRequest(watch="w", camera="c", condition="x", frame=frame((1, 2, 3))))
    assert v.kind is AnswerKind.UNAVAILABLE and "not found" in (v.error or "")
