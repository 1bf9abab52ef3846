"""The files a config names: present and readable, each reported with the key that names it.

Two levels:

- :func:`load_time_file_problems`: files without which nothing can start, checked
  by every load (``check``, ``run``, a reload): the secret files (``*_file``,
  readable UTF-8 text) and the MQTT TLS files (readable; ``key_file`` needs
  ``cert_file``).
- :func:`check_files`: what ``python -m pipeline check`` adds: model files, the
  llama-server program, the CLIP tokenizer, camera files and devices, ONNX
  detector models. A backend that no watch names is one ``auto`` may skip: its
  missing files are notes, not errors.

Example:
    >>> from pipeline.core.config import LookoutConfig
    >>> cfg = LookoutConfig(cameras={"porch": {"url": "/nonexistent/porch.mp4"}})
    >>> for problem in check_files(cfg).errors:
    ...     print(problem)
    cameras.porch.url: file '/nonexistent/porch.mp4' does not exist
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.core.config import (
    AutoBackendConfig,
    BackendConfig,
    ClipBackendConfig,
    LlamaServerBackendConfig,
    LookoutConfig,
    NotifySinkConfig,
    OnnxBackendConfig,
    OnnxDetectConfig,
    WebhookSinkConfig,
)
from pipeline.core.config_problems import ConfigProblem

FileKind = Literal["file", "secret", "program", "tokenizer", "device"]


@dataclass(frozen=True, slots=True)
class NamedFile:
    """A path the config names, with its key path and what it must be.

    Attributes:
        key: the TOML key path, such as ``mqtt.tls.ca_file``.
        path: the path as configured (relative to the working folder).
        kind: ``file`` (readable), ``secret`` (readable UTF-8 text), ``program``
            (executable, or found on ``PATH`` when it has no folder), ``tokenizer``
            (a ``tokenizer.json`` or a folder with ``vocab.json`` and ``merges.txt``)
            or ``device`` (present now).
    """

    key: str
    path: Path
    kind: FileKind = "file"


@dataclass(frozen=True, slots=True)
class FileReport:
    """What :func:`check_files` found: errors stop a run, notes are for the reader."""

    errors: list[ConfigProblem] = field(default_factory=list)
    notes: list[ConfigProblem] = field(default_factory=list)


def not_utf8(err: UnicodeDecodeError) -> str:
    """Say where a file is not UTF-8, without echoing its content.

    Example:
        >>> try:
        ...     b"a = 1\\nb = 'caf\\xe9'\\n".decode("utf-8")
        ... except UnicodeDecodeError as err:
        ...     print(not_utf8(err))
        is not UTF-8 text (byte 0xe9 on line 2); save it as UTF-8
    """
    raw = bytes(err.object)
    line = raw.count(b"\n", 0, err.start) + 1
    return f"is not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}); save it as UTF-8"


def file_problem(named: NamedFile) -> str | None:
    """What is wrong with one named file, or ``None`` when it is fine.

    Example:
        >>> file_problem(NamedFile("mqtt.tls.ca_file", Path("/nonexistent/ca.pem")))
        "file '/nonexistent/ca.pem' does not exist"
    """
    path = named.path
    if named.kind == "program":
        return None if _program(path) else f"program '{path}' not found or not executable"
    if named.kind == "device":
        return None if path.exists() else f"device '{path}' is not present"
    if named.kind == "tokenizer" and path.is_dir():
        missing = [n for n in ("vocab.json", "merges.txt") if not (path / n).is_file()]
        return f"folder '{path}' has no {' or '.join(missing)}" if missing else None
    if not path.exists():
        return f"file '{path}' does not exist"
    if path.is_dir():
        return f"'{path}' is a folder, not a file"
    try:
        with path.open("rb") as f:
            data = f.read() if named.kind == "secret" else f.read(1)
    except OSError as err:
        return f"cannot read file '{path}' ({err.strerror})"
    if named.kind == "secret":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            return f"file '{path}' {not_utf8(err)}"
    return None


def _program(path: Path) -> bool:
    if path.parent != Path(".") or path.is_absolute():
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(str(path)) is not None


def secret_files(cfg: LookoutConfig) -> Iterator[NamedFile]:
    """Every ``*_file`` secret of the config."""
    if cfg.mqtt is not None and cfg.mqtt.password_file is not None:
        yield NamedFile("mqtt.password_file", cfg.mqtt.password_file, "secret")
    for name, camera in cfg.cameras.items():
        if camera.password_file is not None:
            yield NamedFile(f"cameras.{name}.password_file", camera.password_file, "secret")
    for name, backend in cfg.backends.items():
        key_file = getattr(backend, "api_key_file", None)
        if key_file is not None:
            yield NamedFile(f"backends.{name}.api_key_file", key_file, "secret")
    for name, sink in cfg.sinks.items():
        if isinstance(sink, WebhookSinkConfig) and sink.secret_file is not None:
            yield NamedFile(f"sinks.{name}.secret_file", sink.secret_file, "secret")
        if isinstance(sink, NotifySinkConfig) and sink.urls_file is not None:
            yield NamedFile(f"sinks.{name}.urls_file", sink.urls_file, "secret")


def tls_files(cfg: LookoutConfig) -> Iterator[NamedFile]:
    """The ``[mqtt.tls]`` files that are set."""
    tls = cfg.mqtt.tls if cfg.mqtt is not None else None
    if tls is None:
        return
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, key)
        if path is not None:
            yield NamedFile(f"mqtt.tls.{key}", path)


def load_time_file_problems(cfg: LookoutConfig) -> list[ConfigProblem]:
    """Problems with the secret and TLS files: every load refuses a config that has some."""
    named = [*secret_files(cfg), *tls_files(cfg)]
    problems = [ConfigProblem(f.key, why) for f in named if (why := file_problem(f))]
    tls = cfg.mqtt.tls if cfg.mqtt is not None else None
    if tls is not None and tls.key_file is not None and tls.cert_file is None:
        problems.append(
            ConfigProblem(
                "mqtt.tls.key_file",
                "is set without mqtt.tls.cert_file (the client certificate it belongs to)",
            )
        )
    return problems


def camera_files(cfg: LookoutConfig) -> Iterator[NamedFile]:
    """Camera files and devices, and the models of ONNX detectors."""
    for name, camera in cfg.cameras.items():
        url = camera.url
        if url.startswith("/dev/"):
            yield NamedFile(f"cameras.{name}.url", Path(url), "device")
        elif "://" not in url:
            yield NamedFile(f"cameras.{name}.url", Path(url))
        if isinstance(camera.detect, OnnxDetectConfig):
            yield NamedFile(f"cameras.{name}.detect.model", camera.detect.model)


def backend_files(name: str, backend: BackendConfig) -> Iterator[NamedFile]:
    """The model files (and the llama-server program) of one backend."""
    key = f"backends.{name}"
    if isinstance(backend, LlamaServerBackendConfig):
        yield NamedFile(f"{key}.binary", backend.binary, "program")
        yield NamedFile(f"{key}.model", backend.model)
        if backend.mmproj is not None:
            yield NamedFile(f"{key}.mmproj", backend.mmproj)
    elif isinstance(backend, OnnxBackendConfig):
        yield NamedFile(f"{key}.model", backend.model)
    elif isinstance(backend, ClipBackendConfig):
        yield NamedFile(f"{key}.image_encoder", backend.image_encoder)
        yield NamedFile(f"{key}.text_encoder", backend.text_encoder)
        yield NamedFile(f"{key}.tokenizer", backend.tokenizer, "tokenizer")


def needed_backends(cfg: LookoutConfig) -> set[str]:
    """Backends a config watch will use for sure: named by it, or by ``auto.use``."""
    needed: set[str] = set()
    uses_auto = False
    for watch in cfg.watches:
        chosen = cfg.backends.get(watch.backend)
        if watch.backend == "auto" or isinstance(chosen, AutoBackendConfig):
            uses_auto = True
        else:
            needed.add(watch.backend)
    autos = [b for b in cfg.backends.values() if isinstance(b, AutoBackendConfig)]
    if uses_auto and autos and autos[0].use is not None:
        needed.add(autos[0].use)
    return needed


def check_files(cfg: LookoutConfig) -> FileReport:
    """Every file the config names, as ``python -m pipeline check`` reports them.

    Secret, TLS, camera and detector files, and the files of backends a watch
    names (directly or through ``auto.use``), are errors when missing or
    unreadable; the files of other backends, which ``auto`` skips when they
    are missing, are notes.
    """
    report = FileReport(errors=load_time_file_problems(cfg))
    for named in camera_files(cfg):
        why = file_problem(named)
        if why is not None:
            target = report.notes if named.kind == "device" else report.errors
            target.append(ConfigProblem(named.key, why))
    needed = needed_backends(cfg)
    for name, backend in cfg.backends.items():
        for named in backend_files(name, backend):
            why = file_problem(named)
            if why is None:
                continue
            if name in needed:
                report.errors.append(ConfigProblem(named.key, why))
            else:
                report.notes.append(
                    ConfigProblem(
                        named.key, f"{why}; no watch names this backend, so auto skips it"
                    )
                )
    return report
