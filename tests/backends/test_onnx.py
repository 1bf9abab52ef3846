"""The onnx backend on tiny models built by the tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from operators.backends.base import LookRequest
from operators.backends.onnx_model import OnnxBackend, labels_from_metadata, point_in_polygon
from pipeline.core.config import OnnxBackendConfig
from pipeline.core.frame import Frame
from pipeline.core.verdict import AnswerKind
from tests.support.tiny_models import colour_classifier, fixed_detector

LEFT = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
RIGHT = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))


def solid(colour: tuple[int, int, int], w: int = 64, h: int = 48) -> Frame:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = colour
    return Frame(camera="yard", seq=1, wall_time=0.0, stream_time=None, width=w, height=h, rgb=rgb)


def req(frame: Frame | None = None, jpeg: bytes | None = None, **kw: object) -> LookRequest:
    return LookRequest(
        watch="w", camera="yard", condition="something red", frame=frame, jpeg=jpeg, **kw
    )  # type: ignore[arg-type]


def test_classifier_is_met_when_a_named_class_passes_the_threshold(tmp_path: Path) -> None:
    model = colour_classifier(tmp_path / "colour.onnx")
    backend = OnnxBackend(
        "cls", OnnxBackendConfig(model=model, match_classes=["red"], threshold=0.6)
    )
    assert backend.availability().available
    assert backend.labels == ["red", "green", "blue"] and backend.input_size == 16
    met = backend.judge(req(solid((255, 0, 0))))
    assert met.kind is AnswerKind.MET and met.confidence is not None and met.confidence > 0.9
    assert met.notification_message == "red seen on yard"
    assert "red" in met.reasoning
    not_met = backend.judge(req(solid((0, 0, 255))))
    assert not_met.kind is AnswerKind.NOT_MET and not_met.reasoning.startswith("Top classes: blue")
    assert not_met.next_run_in == 10.0


def test_classifier_reads_jpeg_when_there_is_no_frame(tmp_path: Path) -> None:
    backend = OnnxBackend(
        "cls",
        OnnxBackendConfig(model=colour_classifier(tmp_path / "c.onnx"), match_classes=["green"]),
    )
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 200, 0)).save(buf, "JPEG")
    assert backend.judge(req(jpeg=buf.getvalue())).condition_met
    assert backend.judge(req()).kind is AnswerKind.NO_FRAME


def test_unknown_match_class_or_missing_names_make_it_unavailable(tmp_path: Path) -> None:
    model = colour_classifier(tmp_path / "c.onnx")
    avail = OnnxBackend(
        "c", OnnxBackendConfig(model=model, match_classes=["purple"])
    ).availability()
    assert not avail.available and "purple" in avail.reason
    bare = colour_classifier(tmp_path / "bare.onnx", names=False)
    avail = OnnxBackend("c", OnnxBackendConfig(model=bare, match_classes=["red"])).availability()
    assert not avail.available and "labels" in avail.reason
    named = OnnxBackend(
        "c", OnnxBackendConfig(model=bare, match_classes=["r"], labels=["r", "g", "b"])
    )
    assert named.availability().available
    missing = OnnxBackend("c", OnnxBackendConfig(model=tmp_path / "no.onnx", match_classes=["r"]))
    assert not missing.availability().available
    assert missing.judge(req(solid((1, 2, 3)))).kind is AnswerKind.UNAVAILABLE


@pytest.fixture
def detector(tmp_path: Path) -> Path:
    # A person at the bottom left (bottom centre (8, 28) of 32), a car at the top right.
    return fixed_detector(
        tmp_path / "det.onnx",
        [[8, 20, 6, 16, 0.9, 0.0], [24, 8, 10, 8, 0.05, 0.8], [20, 20, 4, 4, 0.2, 0.1]],
    )


def test_detector_met_only_inside_the_watch_zones(detector: Path) -> None:
    cfg = OnnxBackendConfig(model=detector, task="detect", match_classes=["person"], threshold=0.5)
    backend = OnnxBackend("det", cfg)
    anywhere = backend.judge(req(solid((0, 0, 0))))
    assert anywhere.condition_met and anywhere.confidence == pytest.approx(0.9)
    left = backend.judge(
        req(solid((0, 0, 0)), zones=("left",), zone_polygons=(("left", LEFT), ("right", RIGHT)))
    )
    assert left.condition_met and left.notification_message == "person seen on yard in left"
    right = backend.judge(
        req(solid((0, 0, 0)), zones=("right",), zone_polygons=(("left", LEFT), ("right", RIGHT)))
    )
    assert not right.condition_met and "none inside right" in right.reasoning
    assert right.next_run_in == 3.0


def test_detector_other_class_and_threshold(detector: Path) -> None:
    car = OnnxBackend(
        "d", OnnxBackendConfig(model=detector, task="detect", match_classes=["car"], threshold=0.85)
    )
    assert not car.judge(req(solid((0, 0, 0)))).condition_met
    car = OnnxBackend(
        "d", OnnxBackendConfig(model=detector, task="detect", match_classes=["car"], threshold=0.5)
    )
    v = car.judge(req(solid((0, 0, 0)), zones=("right",), zone_polygons=(("right", RIGHT),)))
    assert v.condition_met


@pytest.mark.parametrize(
    ("point", "inside"),
    [((0.25, 0.5), True), ((0.75, 0.5), False), ((0.5, 0.5), True), ((-0.1, 0.5), False)],
)
def test_point_in_polygon(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, LEFT) is inside


@pytest.mark.parametrize(
    ("meta", "labels"),
    [
        ({"names": "{0: 'a', 1: 'b'}"}, ["a", "b"]),
        ({"labels": '["x", "y"]'}, ["x", "y"]),
        ({"classes": "p, q"}, ["p", "q"]),
        ({}, None),
    ],
)
def test_labels_from_metadata(meta: dict[str, str], labels: list[str] | None) -> None:
    assert labels_from_metadata(meta) == labels
