"""Tiny ONNX models built with the ``onnx`` package, for backend tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None = None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def colour_classifier(path: Path, size: int = 16, names: bool = True) -> Path:
    """Classes red/green/blue: softmax(20 * mean of each channel)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])
    k = numpy_helper.from_array(np.array(20.0, np.float32), "k")
    shape = numpy_helper.from_array(np.array([1, 3], np.int64), "shape")
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("Mul", ["flat", "k"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(nodes, "colour", [x], [y], [k, shape])
    meta = {"names": "{0: 'red', 1: 'green', 2: 'blue'}"} if names else {}
    return _save(graph, path, meta)


def fixed_detector(path: Path, rows: list[list[float]], size: int = 32, classes: int = 2) -> Path:
    """A YOLOv8-layout detector that always outputs ``rows`` (cx, cy, w, h, scores...)."""
    table = np.asarray(rows, np.float32).T[None]  # [1, 4 + C, N]
    assert table.shape[1] == 4 + classes
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(table.shape))
    const = numpy_helper.from_array(table, "table")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["table", "z"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "det", [x], [y], [const, zero])
    return _save(graph, path, {"names": "{0: 'person', 1: 'car'}"})
