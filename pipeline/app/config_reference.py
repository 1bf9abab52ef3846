"""Render the config reference (docs/config-reference.md) from the pydantic models.

Run ``python -m pipeline.app.config_reference > docs/config-reference.md`` after
changing a config model; a test keeps the committed file current.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
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
    ('[backends.NAME] type = "openai"', c.OpenAIBackendConfig),
    ('[backends.NAME] type = "llama_server"', c.LlamaServerBackendConfig),
    ('[backends.NAME] type = "onnx"', c.OnnxBackendConfig),
    ('[backends.NAME] type = "clip"', c.ClipBackendConfig),
    ('[backends.NAME] type = "detections"', c.DetectionsBackendConfig),
    ('[backends.NAME] type = "none"', c.NoneBackendConfig),
    ('[backends.NAME] type = "auto"', c.AutoBackendConfig),
    ("[[watches]]", c.WatchConfig),
    ('[sinks.NAME] type = "console"', c.ConsoleSinkConfig),
    ('[sinks.NAME] type = "mqtt"', c.MqttSinkConfig),
    ('[sinks.NAME] type = "webhook"', c.WebhookSinkConfig),
    ('[sinks.NAME] type = "jsonl"', c.JsonlSinkConfig),
    ('[sinks.NAME] type = "snapshot"', c.SnapshotSinkConfig),
    ("[metrics]", c.MetricsConfig),
    ("[log]", c.LogConfig),
    ("[reload]", c.ReloadConfig),
    ("[control]", c.ControlConfig),
    ("[shutdown]", c.ShutdownConfig),
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


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the models in `pipeline/config.py` by "
        "`python -m pipeline.app.config_reference`; do not edit by hand.",
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
            desc = (field.description or "").replace("|", "\\|")
            out.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
