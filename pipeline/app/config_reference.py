"""Render the config reference (docs/config-reference.md) from the pydantic models.

Run ``python -m pipeline.app.config_reference > docs/config-reference.md`` after
changing a config model; a test keeps the committed file current.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pipeline.core import config as c

TABLES: list[tuple[str, type[BaseModel]]] = [
    ("[mqtt]", c.MqttConfig),
    ("[mqtt.tls]", c.MqttTlsConfig),
    ("[cameras.NAME]", c.CameraConfig),
    ("[cameras.NAME.zones.ZONE]", c.ZoneConfig),
    ('[cameras.NAME.detect] type = "motion"', c.MotionDetectConfig),
    ('[cameras.NAME.detect] type = "onnx"', c.OnnxDetectConfig),
    ('[cameras.NAME.detect] type = "frigate"', c.FrigateDetectConfig),
    ('[cameras.NAME.detect] type = "mqtt"', c.MqttJsonDetectConfig),
    ("[frigate]", c.FrigateConfig),
    ("[cameras.NAME.captions]", c.CaptionsConfig),
    ('[backends.NAME] type = "openai"', c.OpenAIBackendConfig),
    ('[backends.NAME] type = "llama_server"', c.LlamaServerBackendConfig),
    ('[backends.NAME] type = "onnx"', c.OnnxBackendConfig),
    ('[backends.NAME] type = "clip"', c.ClipBackendConfig),
    ('[backends.NAME] type = "detections"', c.DetectionsBackendConfig),
    ('[backends.NAME] type = "none"', c.NoneBackendConfig),
    ('[backends.NAME] type = "auto"', c.AutoBackendConfig),
    ('[backends.NAME] type = "http"', c.HttpBackendConfig),
    ("[[watches]]", c.WatchConfig),
    ('[sinks.NAME] type = "console"', c.ConsoleSinkConfig),
    ('[sinks.NAME] type = "mqtt"', c.MqttSinkConfig),
    ('[sinks.NAME] type = "webhook"', c.WebhookSinkConfig),
    ('[sinks.NAME] type = "jsonl"', c.JsonlSinkConfig),
    ('[sinks.NAME] type = "snapshot"', c.SnapshotSinkConfig),
    ('[sinks.NAME] type = "notify"', c.NotifySinkConfig),
    ("[metrics]", c.MetricsConfig),
    ("[log]", c.LogConfig),
    ("[reload]", c.ReloadConfig),
    ("[control]", c.ControlConfig),
    ("[shutdown]", c.ShutdownConfig),
    ("[activity]", c.ActivityConfig),
    ("[web]", c.WebConfig),
    ("[cluster]", c.ClusterConfig),
]


_PLAIN_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "Path": "path",
    "SecretStr": "secret string",
}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a).replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else ""
        )
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "table"
    if isinstance(annotation, type):
        return _PLAIN_NAMES.get(annotation.__name__, annotation.__name__)
    return str(annotation)


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default if field.default_factory is None else field.default_factory()
    if value is None:
        return ""
    if isinstance(value, BaseModel | dict) and not isinstance(value, str):
        return "see below" if value else "{}"
    return f"`{value!s}`".replace("|", "\\|")


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):_}"
    return f"{value:g}"


def _element_metadata(annotation: Any) -> list[Any]:
    """Constraints on the numbers inside a list or tuple (``Annotated`` element types)."""
    found: list[Any] = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            for meta in typing.get_args(arg)[1:]:
                found += getattr(meta, "metadata", [meta])
        else:
            found += _element_metadata(arg)
    return found


def bounds(field: FieldInfo) -> tuple[str, str] | None:
    """The lower and upper bound of a numeric field as text, or ``None`` when it has none.

    Example:
        >>> from pipeline.core.config import CameraConfig
        >>> bounds(CameraConfig.model_fields["stall_timeout_s"])
        ('above 0', '3_600')
    """
    lower = upper = None
    for meta in [*field.metadata, *_element_metadata(field.annotation)]:
        if isinstance(meta, at.Ge):
            lower = _number(meta.ge)  # type: ignore[arg-type]
        elif isinstance(meta, at.Gt):
            lower = f"above {_number(meta.gt)}"  # type: ignore[arg-type]
        elif isinstance(meta, at.Le):
            upper = _number(meta.le)  # type: ignore[arg-type]
        elif isinstance(meta, at.Lt):
            upper = f"below {_number(meta.lt)}"  # type: ignore[arg-type]
    if lower is None and upper is None:
        return None
    return (lower or "any", upper or "any")


def describe(field: FieldInfo) -> str:
    """The field's description, with its range when it is a number.

    Example:
        >>> from pipeline.core.config import ShutdownConfig
        >>> describe(ShutdownConfig.model_fields["grace_s"])
        'Seconds looks in flight may take to finish. Range: 0 to 600.'
    """
    text = (field.description or "").strip()
    limits = bounds(field)
    if limits is not None:
        text += f" Range: {limits[0]} to {limits[1]}."
    return text.strip()


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the models in `pipeline/core/config/` by "
        "`python -m pipeline.app.config_reference`; do not edit by hand.",
        "Every number has a range (shown with its key); values outside it, and `inf` or "
        "`nan`, are refused with the key's path.",
        "Every key can be overridden by an environment variable "
        "`LOOKOUT_<TABLE>__<KEY>` (nested keys joined by `__`, names in lower case).",
        "",
    ]
    for title, model in TABLES:
        out += [f"## `{title}`", "", (model.__doc__ or "").strip().splitlines()[0], ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, field in model.model_fields.items():
            if key == "type":
                continue
            desc = describe(field).replace("|", "\\|")
            out.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
