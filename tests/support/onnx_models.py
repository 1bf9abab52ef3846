"""Tiny YOLO-shaped ONNX models built with the ``onnx`` package, and a frame to run them on.

Example::

    model = build_model(tmp_path / "m.onnx", v8_output([[32, 32, 16, 16, 0.9]]), names="{0: 'cat'}")
    OnnxDetector(OnnxDetectConfig(model=model)).detect(frame(64, 64))  # one "cat"
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.core.frame import Frame


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


def frame(w: int = 128, h: int = 64) -> Frame:
    """A black ``w`` x ``h`` RGB frame of camera ``cam`` (seq 1, wall time 5.0)."""
    return Frame(camera="cam", seq=1, wall_time=5.0, stream_time=None, width=w, height=h,
                 rgb=np.zeros((h, w, 3), np.uint8))  # fmt: skip


def v8_output(rows: list[list[float]]) -> np.ndarray:
    """Rows of (cx, cy, w, h, cls0, cls1) -> (1, 6, N)."""
    return np.asarray(rows, np.float32).T[None]
