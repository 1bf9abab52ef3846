"""Every number of the config and of run-time requests has a documented, meaningful range.

The models are walked from :class:`LookoutConfig` and the run-time request
(:class:`RuntimeWatchRequest`), so a field added later is checked too: it needs a
lower and an upper bound, its range shows in the config reference, and ``inf``,
``nan`` and a value past its maximum are refused with the field's key.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator
from typing import Any

import annotated_types as at
import pytest
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from pipeline.app.config_reference import TABLES, describe
from pipeline.app.control.request import RuntimeWatchRequest
from pipeline.core import config as c
from pipeline.core.config_loader import ConfigError, load_config_text

# The required keys of each model that has some, with valid values.
REQUIRED: dict[type[BaseModel], dict[str, Any]] = {
    c.CameraConfig: {"url": "a.mp4"},
    c.ZoneConfig: {"points": [[0, 0], [1, 0], [0, 1]]},
    c.OnnxDetectConfig: {"model": "m.onnx"},
    c.MqttJsonDetectConfig: {"topic": "t"},
    c.OpenAIBackendConfig: {"base_url": "http://127.0.0.1:8080/v1"},
    c.LlamaServerBackendConfig: {"model": "m.gguf"},
    c.OnnxBackendConfig: {"model": "m.onnx", "match_classes": ["cat"]},
    c.ClipBackendConfig: {"image_encoder": "i", "text_encoder": "t", "tokenizer": "k"},
    c.WebhookSinkConfig: {"url": "http://127.0.0.1:9/hook"},
    c.JsonlSinkConfig: {"path": "a.jsonl"},
    c.SnapshotSinkConfig: {"directory": "shots"},
    c.WatchConfig: {"name": "w", "camera": "porch", "condition": "a cat"},
    c.CaptionsConfig: {"backend": "vlm"},
    c.HttpBackendConfig: {"url": "http://127.0.0.1:8000/describe"},
    c.NotifySinkConfig: {"urls": ["json://127.0.0.1/x"]},
    c.FrigateConfig: {"url": "http://127.0.0.1:5000"},
    RuntimeWatchRequest: {"name": "w", "camera": "porch", "condition": "a cat"},
}


def _args(annotation: Any) -> tuple[Any, ...]:
    return typing.get_args(annotation)


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in _args(annotation):
        yield from _models(arg)


def all_models() -> list[type[BaseModel]]:
    """Every model reachable from the config and the run-time request."""
    seen: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [c.LookoutConfig, RuntimeWatchRequest]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            todo.extend(_models(field.annotation))
    return seen


def _is_number(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return False
    if origin is typing.Annotated:
        return _is_number(_args(annotation)[0])
    if origin is not None or isinstance(annotation, types.UnionType):
        return any(_is_number(a) for a in _args(annotation))
    return annotation in (int, float)


def numeric_fields() -> list[tuple[type[BaseModel], str]]:
    return [
        (model, name)
        for model in all_models()
        for name, field in model.model_fields.items()
        if _is_number(field.annotation)
    ]


def _leaf_bounds(annotation: Any, field: FieldInfo) -> list[Any]:
    """Constraints that apply to the numbers of a field (on it or on its element type)."""
    found = list(field.metadata)

    def walk(a: Any) -> None:
        if typing.get_origin(a) is typing.Annotated:
            for meta in _args(a)[1:]:
                found.extend(getattr(meta, "metadata", [meta]))
        for arg in _args(a):
            walk(arg)

    walk(annotation)
    return found


def _upper(field: FieldInfo) -> float | None:
    for meta in _leaf_bounds(field.annotation, field):
        if isinstance(meta, at.Le):
            return float(meta.le) + 1  # type: ignore[arg-type]
        if isinstance(meta, at.Lt):
            return float(meta.lt)  # type: ignore[arg-type]
    return None


def _sample(annotation: Any, bad: float) -> Any:
    """A value of ``annotation`` whose numbers are all ``bad``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _sample(_args(annotation)[0], bad)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in _args(annotation) if a is not type(None)), bad)
    if origin is tuple:
        return [_sample(a, bad) for a in _args(annotation)]
    if origin is list:
        return [_sample(_args(annotation)[0], bad)] * 3
    return bad


FIELDS = numeric_fields()
IDS = [f"{m.__name__}.{n}" for m, n in FIELDS]


def test_the_walk_finds_every_table_and_the_request() -> None:
    found = set(all_models())
    assert {model for _, model in TABLES} <= found
    assert RuntimeWatchRequest in found
    assert len(FIELDS) > 80


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=IDS)
def test_every_number_has_both_bounds_and_shows_them(model: type[BaseModel], name: str) -> None:
    field = model.model_fields[name]
    metas = _leaf_bounds(field.annotation, field)
    assert any(isinstance(m, at.Ge | at.Gt) for m in metas), f"{name} has no lower bound"
    assert any(isinstance(m, at.Le | at.Lt) for m in metas), f"{name} has no upper bound"
    assert " Range: " in describe(field), "the range must show in the config reference"


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=IDS)
@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "over-max"])
def test_every_number_refuses_infinite_nan_and_too_big(
    model: type[BaseModel], name: str, bad: str
) -> None:
    field = model.model_fields[name]
    if bad == "over-max":
        value = _upper(field)
        assert value is not None, f"{name} has no upper bound"
    else:
        value = float(bad)
    required = [n for n, f in model.model_fields.items() if f.is_required() and n != name]
    assert not required or model in REQUIRED, f"add {model.__name__} to REQUIRED in {__file__}"
    data = {**REQUIRED.get(model, {}), name: _sample(field.annotation, value)}
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    locs = [e["loc"] for e in info.value.errors()]
    assert all(loc[0] == name for loc in locs), locs


@pytest.mark.parametrize("model", list(REQUIRED), ids=lambda m: m.__name__)
def test_required_values_are_valid(model: type[BaseModel]) -> None:
    model.model_validate(REQUIRED[model])


def test_every_model_with_numbers_and_required_keys_is_known() -> None:
    for model in {m for m, _ in FIELDS}:
        if any(f.is_required() for f in model.model_fields.values()):
            assert model in REQUIRED, f"add {model.__name__} to REQUIRED"


CAMERA = '[cameras.porch]\nurl = "a.mp4"\n'


@pytest.mark.parametrize("value", ["inf", "+inf", "-inf", "nan", "1e9"])
def test_stall_timeout_infinite_or_huge_is_refused_with_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(CAMERA + f"stall_timeout_s = {value}\n")
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 1, problems
    assert problems[0].startswith("cameras.porch.stall_timeout_s: "), problems
    if value != "1e9":
        assert "finite" in problems[0] or "greater than" in problems[0], problems


def test_environment_cannot_sneak_in_infinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKOUT_SHUTDOWN__GRACE_S", "inf")
    with pytest.raises(ConfigError) as info:
        load_config_text(CAMERA)
    assert [str(p).split(":")[0] for p in info.value.problems] == ["shutdown.grace_s"]


def test_a_value_at_the_maximum_is_accepted() -> None:
    cfg = load_config_text(CAMERA + "stall_timeout_s = 3600\n")
    assert math.isclose(cfg.cameras["porch"].stall_timeout_s, 3600)
