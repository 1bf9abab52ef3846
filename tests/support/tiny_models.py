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


def clip_tokenizer_files(folder: Path) -> dict[str, int]:
    """A byte-level CLIP vocabulary with merges for 'red' and 'blue'; writes vocab.json,
    merges.txt and an equivalent HF tokenizer.json into ``folder``; returns the vocab."""
    import json

    from operators.backends.clip_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    merges = [("r", "e"), ("re", "d</w>"), ("b", "l"), ("bl", "u"), ("blu", "e</w>")]
    tokens = chars + [c + "</w>" for c in chars] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    hf = {"model": {"type": "BPE", "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}}
    (folder / "tokenizer.json").write_text(json.dumps(hf))
    return vocab


def clip_encoders(folder: Path, vocab: dict[str, int], size: int = 8) -> tuple[Path, Path]:
    """Image encoder: mean of each channel. Text encoder: sum of token rows, where
    'red</w>' is [10, 0, 0], 'blue</w>' is [0, 0, 10] and every other token [.1, .1, .1]."""
    x = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, [1, 3])
    shape = numpy_helper.from_array(np.array([1, 3], np.int64), "shape")
    image = _save(
        helper.make_graph(
            [
                helper.make_node("GlobalAveragePool", ["pixel_values"], ["p"]),
                helper.make_node("Reshape", ["p", "shape"], ["image_embeds"]),
            ],
            "clip_image",
            [x],
            [y],
            [shape],
        ),
        folder / "image.onnx",
    )
    table = np.full((len(vocab), 3), 0.1, np.float32)
    table[vocab["red</w>"]] = (10, 0, 0)
    table[vocab["blue</w>"]] = (0, 0, 10)
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["n", "l"])
    out = helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["n", 3])
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    text = _save(
        helper.make_graph(
            [
                helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
                helper.make_node("ReduceSum", ["rows", "axes"], ["text_embeds"], keepdims=0),
            ],
            "clip_text",
            [ids],
            [out],
            [numpy_helper.from_array(table, "table"), axes],
        ),
        folder / "text.onnx",
    )
    return image, text
