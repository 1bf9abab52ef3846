"""The ONNX detector against tiny YOLO-shaped models built with the ``onnx`` package."""

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import reactivex
from onnx import TensorProto, helper, numpy_helper
from reactivex.scheduler import ImmediateScheduler

from pipeline.core.config import OnnxDetectConfig
from pipeline.core.detection import Detection
from pipeline.core.frame import Frame
from sources.onnx_detector import OnnxDetector, decode_yolo, detect_onnx, nms, parse_names


def build_model(path: Path, output: np.ndarray, size: int = 64, names: str | None = None) -> Path:
    """A model whose output is ``output`` (constant) plus 0 x mean(input), so it runs the input."""
    const = numpy_helper.from_array(output.astype(np.float32), "const")
    shape = numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape"], ["mean3"]),
        helper.make_node("Mul", ["mean3", "zero"], ["nothing"]),
        helper.make_node("Add", ["const", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[const, shape, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names:
        helper.set_model_props(model, {"names": names})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _frame(w: int = 128, h: int = 64) -> Frame:
    return Frame(camera="cam", seq=1, wall_time=5.0, stream_time=None, width=w, height=h,
                 rgb=np.zeros((h, w, 3), np.uint8))  # fmt: skip


def v8_output(rows: list[list[float]]) -> np.ndarray:
    """Rows of (cx, cy, w, h, cls0, cls1) -> (1, 6, N)."""
    return np.asarray(rows, np.float32).T[None]


def test_v8_layout_letterbox_nms_and_metadata_names(tmp_path: Path) -> None:
    out = v8_output([
        [32, 32, 16, 16, 0.9, 0.1],  # person at the centre
        [33, 32, 16, 16, 0.8, 0.0],  # overlaps: suppressed
        [33, 32, 16, 16, 0.0, 0.7],  # other class: kept
        [10, 20, 4, 4, 0.2, 0.1],    # below confidence
    ])  # fmt: skip
    model = build_model(tmp_path / "v8.onnx", out, names="{0: 'person', 1: 'car'}")
    det = OnnxDetector(OnnxDetectConfig(model=model, confidence=0.4))
    assert det.size == 64 and det.names == ["person", "car"]
    found = det.detect(_frame(128, 64))
    assert [d.label for d in found] == ["person", "car"]
    person = found[0]
    # 128x64 letterboxed into 64x64: scale 0.5, pad_y 16. (24..40, 24..40) -> x 48..80, y 16..48.
    assert person.box.as_list() == pytest.approx([48, 16, 80, 48])
    assert person.frame_size == (128, 64) and person.source == "onnx" and person.time == 5.0
    assert person.score == pytest.approx(0.9)


def test_v5_layout_with_objectness_and_config_classes(tmp_path: Path) -> None:
    rows = np.asarray([[32, 32, 8, 8, 0.5, 0.2, 0.9], [5, 5, 2, 2, 0.1, 1.0, 0.0]], np.float32)
    model = build_model(tmp_path / "v5.onnx", rows[None])
    det = OnnxDetector(OnnxDetectConfig(model=model, confidence=0.3, classes=["cat", "dog"]))
    (d,) = det.detect(_frame(64, 64))
    assert d.label == "dog" and d.score == pytest.approx(0.45)


def test_unknown_names_and_bad_models(tmp_path: Path) -> None:
    rows = [[32, 32, 8, 8, 0.1, 0.9]] + [[0.0] * 6] * 20  # more anchors than channels
    model = build_model(tmp_path / "n.onnx", v8_output(rows))
    assert OnnxDetector(OnnxDetectConfig(model=model)).detect(_frame())[0].label == "class1"
    with pytest.raises(ValueError, match="not found"):
        OnnxDetector(OnnxDetectConfig(model=tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="Cannot load"):
        OnnxDetector(OnnxDetectConfig(model=junk))


def test_helpers() -> None:
    assert parse_names("['a', 'b']") == ["a", "b"]
    assert parse_names("nonsense(") is None
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert nms(boxes, np.array([0.5, 0.6], np.float32), 0.5) == [1]
    with pytest.raises(ValueError):
        decode_yolo(np.zeros((2, 3, 4, 5)), None, 0.5)


def test_detect_onnx_paces_on_stream_time_not_on_arrival(tmp_path: Path) -> None:
    # Ten frames 0.1 s apart in the stream, all decoded at once (a file read faster than
    # real time): at 5 fps of video, frames 0, 2, 4, 6 and 8 are analysed.
    model = build_model(tmp_path / "m.onnx", v8_output([[32, 32, 16, 16, 0.9]]), names="{0: 'cat'}")
    cfg = OnnxDetectConfig(model=model, fps=5)
    frames = [dataclasses.replace(_frame(64, 64), seq=i, stream_time=i * 0.1) for i in range(10)]
    found: list[Detection] = []
    reactivex.from_iterable(frames).pipe(
        detect_onnx(cfg, detect_scheduler=ImmediateScheduler())
    ).subscribe(found.append)
    assert len(found) == 5 and {d.label for d in found} == {"cat"}
