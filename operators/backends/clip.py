"""The ``clip`` backend: zero-shot classification with CLIP-style ONNX encoders.

Classification only: it says whether the whole picture looks more like the
"met" prompts than the "not met" prompts; it does not locate objects or read
zones. The prompts are the condition and a negation of it, unless the config
gives its own lists. Cosine similarity decides; the condition is met when the
best positive prompt beats the best negative one by ``margin``. Confidence is
CLIP's two-way softmax (logit scale 100). ``next_run_in``: ``next_run_in_s``,
or 3 s when the score is positive but below the margin (something forming).

Example:
    >>> default_prompts("a car is in the driveway")[0]
    ['a car is in the driveway', 'a photo of a car is in the driveway']
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.clip_tokenizer import ClipTokenizer
from operators.backends.hardware import probe_hardware
from operators.backends.image_input import image_tensor
from pipeline.core.config import ClipBackendConfig
from pipeline.core.logs import log_unexpected
from pipeline.core.verdict import AnswerKind, Verdict

log = logging.getLogger("lookout.backends.clip")

FloatArray = npt.NDArray[np.float32]
FORMING_NEXT_RUN_S = 3.0


def default_prompts(condition: str) -> tuple[list[str], list[str]]:
    """Positive and negative prompts for a condition when the config gives none."""
    c = condition.strip().rstrip(".")
    return (
        [c, f"a photo of {c}"],
        [f"it is not true that {c}", "a photo of an ordinary empty scene"],
    )


def _unit(x: FloatArray) -> FloatArray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    out: FloatArray = (x / np.maximum(norm, 1e-12)).astype(np.float32)
    return out


class ClipBackend:
    """Zero-shot CLIP as a backend (onnxruntime; CUDA when present). Thread-safe."""

    type = "clip"
    needs_gpu = False
    takes_images = True

    def __init__(self, name: str, config: ClipBackendConfig) -> None:
        self.name = name
        self.config = config
        self.ram_mb = config.ram_mb
        self._lock = threading.Lock()
        self._image: Any = None
        self._text: Any = None
        self._tokenizer: ClipTokenizer | None = None
        self._text_cache: dict[tuple[str, ...], FloatArray] = {}

    def availability(self) -> Availability:
        """Available when both encoders and the tokenizer load."""
        hw = probe_hardware()
        if hw.available_ram_mb and hw.available_ram_mb < self.ram_mb and not hw.cuda:
            return Availability(
                False, f"needs about {self.ram_mb} MB of RAM, {hw.available_ram_mb} MB free"
            )
        try:
            self._load()
        except BackendError as exc:
            return Availability(False, str(exc))
        return Availability(True, f"{self.config.image_encoder.name} (zero-shot, classification)")

    def _load(self) -> None:
        with self._lock:
            if self._image is not None:
                return
            cfg = self.config
            for path in (cfg.image_encoder, cfg.text_encoder):
                if not path.is_file():
                    raise BackendError(f"encoder file {path} not found")
            try:
                tokenizer = ClipTokenizer.from_path(cfg.tokenizer)
            except (ValueError, KeyError, OSError) as exc:
                raise BackendError(f"tokenizer: {exc}") from None
            try:
                import onnxruntime as ort
            except ImportError:
                raise BackendError("onnxruntime is not installed") from None
            providers = cfg.providers or (
                (["CUDAExecutionProvider"] if probe_hardware().cuda else [])
                + ["CPUExecutionProvider"]
            )
            try:
                image = ort.InferenceSession(str(cfg.image_encoder), providers=providers)
                text = ort.InferenceSession(str(cfg.text_encoder), providers=providers)
            except Exception as exc:  # onnxruntime's own exception types
                raise BackendError(f"cannot load the encoders: {exc}") from None
            self._tokenizer, self._image, self._text = tokenizer, image, text

    def start(self) -> None:
        """Load the encoders (errors come back as failed verdicts on looks)."""
        try:
            self._load()
        except BackendError:
            return

    def stop(self) -> None:
        """Drop the sessions and cached text embeddings."""
        with self._lock:
            self._image = self._text = self._tokenizer = None
            self._text_cache.clear()

    def embed_texts(self, prompts: list[str]) -> FloatArray:
        """Unit text embeddings ``[len(prompts), D]`` (cached per prompt list)."""
        key = tuple(prompts)
        cached = self._text_cache.get(key)
        if cached is not None:
            return cached
        assert self._tokenizer is not None
        ids = np.asarray(
            [self._tokenizer.encode(p, self.config.context_length) for p in prompts], np.int64
        )
        feeds: dict[str, Any] = {}
        for inp in self._text.get_inputs():
            if "mask" in inp.name:
                feeds[inp.name] = (np.cumsum(ids == self._tokenizer.eot, axis=1) == 0) | (
                    ids == self._tokenizer.eot
                )
                feeds[inp.name] = feeds[inp.name].astype(np.int64)
            else:
                feeds[inp.name] = ids
        out = _unit(np.asarray(self._text.run(None, feeds)[0], np.float32))
        self._text_cache[key] = out
        return out

    def embed_image(self, request: LookRequest) -> FloatArray | None:
        """The unit image embedding ``[D]`` of the look's frame (or JPEG)."""
        hwc = image_tensor(
            request,
            self.config.input_size,
            self.config.mean,
            self.config.std,
            resample=Image.Resampling.BICUBIC,
        )
        if hwc is None:
            return None
        x = hwc.transpose(2, 0, 1)[None]
        name = self._image.get_inputs()[0].name
        out = np.asarray(self._image.run(None, {name: np.ascontiguousarray(x)})[0], np.float32)
        return _unit(out.reshape(-1))

    def judge(self, request: LookRequest) -> Verdict:
        """Compare the frame with the positive and negative prompts."""
        t0 = time.monotonic()
        try:
            self._load()
        except BackendError as exc:
            return Verdict.failed(AnswerKind.UNAVAILABLE, f"{self.name}: {exc}")
        try:
            image = self.embed_image(request)
            if image is None:
                return Verdict.failed(AnswerKind.NO_FRAME, "no frame to judge")
            pos_default, neg_default = default_prompts(request.condition)
            positives = self.config.positive_prompts or pos_default
            negatives = self.config.negative_prompts or neg_default
            sims = self.embed_texts(positives + negatives) @ image
        except Exception as exc:  # encoders with unexpected shapes must not kill the watch
            log_unexpected(log, f"backend {self.name}: the encoders failed", exc)
            return Verdict.failed(AnswerKind.ERROR, f"{self.name}: {exc}")
        pos_i = int(np.argmax(sims[: len(positives)]))
        neg_i = int(np.argmax(sims[len(positives) :]))
        pos, neg = float(sims[pos_i]), float(sims[len(positives) + neg_i])
        diff = pos - neg
        confidence = 1.0 / (1.0 + math.exp(-100.0 * diff))
        met = diff >= self.config.margin
        if met:
            next_run = self.config.next_run_in_s
        elif diff >= 0:
            next_run = min(FORMING_NEXT_RUN_S, self.config.next_run_in_s)
        else:
            next_run = self.config.next_run_in_s
        reasoning = (
            f"Closest prompts: '{positives[pos_i]}' {pos:.3f} vs '{negatives[neg_i]}' {neg:.3f} "
            f"(margin {diff:+.3f}, needed {self.config.margin:.3f})."
        )
        message = f"{request.condition} ({request.camera})" if met else None
        return Verdict.answered(
            met, next_run, reasoning, message, confidence=confidence
        ).with_latency(time.monotonic() - t0)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Score ``prompt`` against the image (zero-shot cannot write free text)."""
        verdict = self.judge(LookRequest(watch="describe", camera="image", condition=prompt,
                                         jpeg=jpeg))  # fmt: skip
        if verdict.error:
            raise BackendError(verdict.error)
        return verdict.reasoning
