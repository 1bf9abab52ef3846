"""Load ``pipeline.toml`` and turn every problem into one plain line with its key path.

Example:
    >>> from pathlib import Path
    >>> try:
    ...     load_config_text('[cameras.porch]\\nurl = "ftp://x"\\n')
    ... except ConfigError as err:
    ...     print(err.problems[0])  # doctest: +ELLIPSIS
    cameras.porch.url: has unsupported scheme 'ftp'; ...
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.core.config import (
    BackendConfig,
    CameraConfig,
    FrigateDetectConfig,
    LookoutConfig,
    MqttJsonDetectConfig,
    MqttSinkConfig,
    WatchConfig,
    WebhookSinkConfig,
)
from pipeline.core.config_files import load_time_file_problems, not_utf8
from pipeline.core.config_problems import ConfigError, ConfigProblem, key_path
from pipeline.core.redact import register_secret

__all__ = [
    "DEFAULT_CONFIG",
    "ConfigError",
    "ConfigProblem",
    "check_references",
    "check_watch_references",
    "key_path",
    "load_config",
    "load_config_text",
    "metrics_url",
    "not_utf8",
    "parse_document",
    "problems_from_validation",
    "register_config_secrets",
    "with_configuration_urls",
    "with_paths_relative_to",
]

DEFAULT_CONFIG = Path("pipeline.toml")
_TAGGED_TABLES = ("backends", "sinks")
_TAGS = {
    "openai", "llama_server", "onnx", "clip", "detections", "none", "auto",
    "console", "mqtt", "webhook", "jsonl", "snapshot", "motion", "frigate",
}  # fmt: skip


def _strip_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    parts = list(loc)
    # backends.NAME.<tag>.field and cameras.NAME.detect.<tag>.field carry the tag of the union.
    if len(parts) > 2 and parts[0] in _TAGGED_TABLES and parts[2] in _TAGS:
        del parts[2]
    if len(parts) > 3 and parts[0] == "cameras" and parts[2] == "detect" and parts[3] in _TAGS:
        del parts[3]
    return tuple(parts)


def _explain(error: dict[str, Any]) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the config reference in the README"
    if kind == "missing":
        return "is required but missing"
    if kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return f"unknown type; expected one of {expected}"
    if kind == "union_tag_not_found":
        return "needs a 'type' key"
    if kind == "string_pattern_mismatch":
        return "must use only letters, digits, '_' and '-'"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg[0].lower() + msg[1:] if msg else kind


def problems_from_validation(err: ValidationError) -> list[ConfigProblem]:
    """One :class:`ConfigProblem` per pydantic error, without input values."""
    problems = []
    for e in err.errors(include_url=False, include_input=False):
        path = key_path(_strip_union_tags(tuple(e["loc"])))
        problems.append(ConfigProblem(path, _explain(dict(e))))
    return problems


def check_references(cfg: LookoutConfig, *, frigate_pending: bool = False) -> list[ConfigProblem]:
    """Cross-table rules: watches name real cameras, zones, backends and sinks.

    With ``frigate_pending`` (a file with ``[frigate]``, before Frigate was asked
    for its cameras) a watch may name a camera the file does not declare: it is
    checked once Frigate's cameras are added (``pipeline.app.frigate_setup``).
    """
    problems: list[ConfigProblem] = []
    seen: set[str] = set()
    for i, w in enumerate(cfg.watches):
        if frigate_pending and w.camera not in cfg.cameras:
            continue
        problems.extend(check_watch_references(cfg, w, f"watches[{i}]"))
        if w.name in seen:
            problems.append(ConfigProblem(f"watches[{i}].name", f"'{w.name}' is used twice"))
        seen.add(w.name)
    mqtt_users = [f"sinks.{n}" for n, s in cfg.sinks.items() if isinstance(s, MqttSinkConfig)] + [
        f"cameras.{n}.detect"
        for n, c in cfg.cameras.items()
        if isinstance(c.detect, FrigateDetectConfig | MqttJsonDetectConfig)
    ]
    if cfg.frigate is not None:
        mqtt_users.append("frigate")  # Frigate's detections come over MQTT
    elif not cfg.cameras:
        problems.append(ConfigProblem("cameras", "is required but missing"))
    if cfg.mqtt is None:
        problems.extend(ConfigProblem(p, "needs an [mqtt] table") for p in mqtt_users)
    for n, cam in cfg.cameras.items():
        if cam.captions is not None and cam.captions.backend not in (*cfg.backends, "auto"):
            known = ", ".join(sorted(cfg.backends)) or "none defined"
            problems.append(
                ConfigProblem(
                    f"cameras.{n}.captions.backend",
                    f"unknown backend '{cam.captions.backend}'; known: {known}, auto",
                )
            )
    problems.extend(load_time_file_problems(cfg))
    return problems


def check_watch_references(cfg: LookoutConfig, w: WatchConfig, path: str) -> list[ConfigProblem]:
    """Check one watch against the cameras, backends and sinks of ``cfg``."""
    problems: list[ConfigProblem] = []
    camera: CameraConfig | None = cfg.cameras.get(w.camera)
    if camera is None:
        known = ", ".join(sorted(cfg.cameras)) or "none defined"
        problems.append(
            ConfigProblem(f"{path}.camera", f"unknown camera '{w.camera}'; known: {known}")
        )
    else:
        missing = [z for z in w.zones if z not in camera.zones]
        if missing:
            known = ", ".join(sorted(camera.zones)) or "none defined"
            problems.append(
                ConfigProblem(
                    f"{path}.zones",
                    f"camera '{w.camera}' has no zone {', '.join(repr(z) for z in missing)}; "
                    f"its zones: {known}",
                )
            )
    if w.backend != "auto" and w.backend not in cfg.backends:
        known = ", ".join(sorted(cfg.backends)) or "none defined"
        problems.append(
            ConfigProblem(f"{path}.backend", f"unknown backend '{w.backend}'; known: {known}, auto")
        )
    for j, s in enumerate(w.sinks or []):
        if s not in cfg.sinks:
            known = ", ".join(sorted(cfg.sinks)) or "none defined"
            problems.append(
                ConfigProblem(f"{path}.sinks[{j}]", f"unknown sink '{s}'; known: {known}")
            )
    return problems


def register_config_secrets(cfg: LookoutConfig) -> None:
    """Tell the redactor every secret the config holds, so logs never show them."""
    if cfg.mqtt is not None:
        register_secret(cfg.mqtt.resolved_password())
    for c in cfg.cameras.values():
        if c.password is not None:
            register_secret(c.password.get_secret_value())
    backend: BackendConfig
    for backend in cfg.backends.values():
        resolve = getattr(backend, "resolved_api_key", None)
        if resolve is not None:
            register_secret(resolve())
    for s in cfg.sinks.values():
        if isinstance(s, WebhookSinkConfig) and s.secret is not None:
            register_secret(s.secret.get_secret_value())
    if cfg.web.token is not None:
        register_secret(cfg.web.token.get_secret_value())


def parse_document(data: dict[str, Any], source: str = "") -> LookoutConfig:
    """Validate a parsed TOML document (plus environment overrides)."""
    try:
        cfg = LookoutConfig(**data)
    except ValidationError as err:
        raise ConfigError(problems_from_validation(err), source) from None
    problems = check_references(cfg, frigate_pending=cfg.frigate is not None)
    if problems:
        raise ConfigError(problems, source)
    register_config_secrets(cfg)
    return with_configuration_urls(cfg)


def metrics_url(cfg: LookoutConfig) -> str | None:
    """The metrics address others can open: enabled, a fixed port, a host that is not loopback.

    Example:
        >>> cfg = load_config_text('[cameras.a]\\nurl = "a.mp4"\\n'
        ...     '[metrics]\\nenabled = true\\nhost = "192.168.1.5"\\n')
        >>> metrics_url(cfg)
        'http://192.168.1.5:9108/metrics'
    """
    m = cfg.metrics
    host = m.host.strip()
    if not m.enabled or m.port == 0 or host in ("", "localhost"):
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{m.port}/metrics"  # a host name
    if ip.is_unspecified or ip.is_loopback:
        return None
    shown = f"[{host}]" if ip.version == 6 else host
    return f"http://{shown}:{m.port}/metrics"


def with_configuration_urls(cfg: LookoutConfig) -> LookoutConfig:
    """Give Home Assistant MQTT sinks without a ``configuration_url`` the metrics address."""
    url = metrics_url(cfg)
    if url is None:
        return cfg
    sinks = {
        name: sink.model_copy(update={"configuration_url": url})
        if isinstance(sink, MqttSinkConfig) and sink.home_assistant and not sink.configuration_url
        else sink
        for name, sink in cfg.sinks.items()
    }
    return cfg.model_copy(update={"sinks": sinks})


def load_config_text(text: str, source: str = "<text>") -> LookoutConfig:
    """Parse and validate TOML text; raises :class:`ConfigError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([ConfigProblem("", f"TOML syntax error: {err}")], source) from None
    return parse_document(data, source)


def load_config(path: Path = DEFAULT_CONFIG) -> LookoutConfig:
    """Read, parse and validate ``pipeline.toml``; raises :class:`ConfigError`.

    Example:
        >>> cfg = load_config(Path("pipeline.toml"))  # doctest: +SKIP
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(
            [ConfigProblem("", f"cannot read {path}: {err.strerror}")], str(path)
        ) from None
    try:
        text = data.decode("utf-8-sig")  # a byte order mark (some Windows editors) is fine
    except UnicodeDecodeError as err:
        raise ConfigError([ConfigProblem("", f"the file {not_utf8(err)}")], str(path)) from None
    cfg = load_config_text(text, str(path))
    return with_paths_relative_to(cfg, path.parent)


def with_paths_relative_to(cfg: LookoutConfig, folder: Path) -> LookoutConfig:
    """Resolve relative camera file paths against ``folder`` (the config file's folder)."""
    cameras = {}
    for name, camera in cfg.cameras.items():
        url = camera.url
        if "://" not in url and not url.startswith("/dev/") and not Path(url).is_absolute():
            camera = camera.model_copy(update={"url": str((folder / url).resolve())})
        cameras[name] = camera
    return cfg.model_copy(update={"cameras": cameras})
