"""The llama-server command line: building it, and keeping its secrets out of sight.

Example:
    >>> masked_args(["--api-key", "k-123", "--threads", "2"])
    ['--api-key', '***', '--threads', '2']
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from pipeline.core.config import LlamaServerBackendConfig
from pipeline.core.redact import MASK

SECRET_FLAGS = frozenset({"--api-key", "--hf-token", "-hft", "--api-key-file"})
"""llama-server options whose value is a secret (``--api-key-file``: the file's keys)."""


PARALLEL_FLAGS = frozenset({"--parallel", "-np"})
"""llama-server options that set the number of slots (else ``max_concurrency`` does)."""


def secret_args(args: Sequence[str]) -> list[str]:
    """Return the secret values in llama-server arguments (``--api-key K`` or ``--api-key=K``).

    ``--api-key`` may hold several keys separated by commas: each is returned
    too. For ``--api-key-file`` the keys in the file are returned (one a line).

    Example:
        >>> secret_args(["--no-webui", "--api-key", "k-123,k-456", "--hf-token=hf_abc"])
        ['k-123,k-456', 'k-123', 'k-456', 'hf_abc']
    """
    found: list[str] = []
    for i, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        if flag not in SECRET_FLAGS:
            continue
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
        if not value:
            continue
        if flag == "--api-key-file":
            with contextlib.suppress(OSError, UnicodeDecodeError):
                found += [line.strip() for line in Path(value).read_text().splitlines()]
            continue
        found.append(value)
        if "," in value:
            found += [part.strip() for part in value.split(",")]
    return [v for v in found if v]


def masked_args(args: Sequence[str]) -> list[str]:
    """Return the arguments with every secret value (see :data:`SECRET_FLAGS`) as ``***``.

    Example:
        >>> masked_args(["--api-key", "k-123", "--hf-token=hf_abc", "--threads", "2"])
        ['--api-key', '***', '--hf-token=***', '--threads', '2']
    """
    out = list(args)
    for i, arg in enumerate(args):
        flag, eq, _ = arg.partition("=")
        if flag in SECRET_FLAGS and flag != "--api-key-file":
            if eq:
                out[i] = f"{flag}={MASK}"
            elif i + 1 < len(out):
                out[i + 1] = MASK
    return out


def api_key(args: Sequence[str]) -> str | None:
    """Return the first API key the server will demand (``--api-key`` or ``--api-key-file``).

    Example:
        >>> api_key(["--api-key", "k-123,k-456"]), api_key(["--threads", "2"])
        ('k-123', None)
    """
    for i, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
        if flag == "--api-key" and value:
            return value.split(",")[0].strip() or None
        if flag == "--api-key-file" and value:
            keys = secret_args([arg] if eq else [arg, value])
            return keys[0] if keys else None
    return None


def resolve_binary(binary: Path) -> str | None:
    """Find the executable: a path that exists, or a name on ``PATH``."""
    if binary.parent != Path(".") or binary.is_absolute():
        return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None
    return shutil.which(str(binary))


def command_line(config: LlamaServerBackendConfig, binary: str, port: int) -> list[str]:
    """Build the llama-server command line for a config.

    Example:
        >>> from pathlib import Path
        >>> cfg = LlamaServerBackendConfig(model=Path("m.gguf"), mmproj=Path("p.gguf"), threads=2)
        >>> command_line(cfg, "llama-server", 8081)[:5]
        ['llama-server', '--model', 'm.gguf', '--mmproj', 'p.gguf']
        >>> command_line(cfg, "llama-server", 8081)[-2:]  # one slot per request in flight
        ['--parallel', '1']
    """
    cmd = [binary, "--model", str(config.model)]
    if config.mmproj is not None:
        cmd += ["--mmproj", str(config.mmproj)]
    cmd += [
        "--host",
        config.host,
        "--port",
        str(port),
        "--ctx-size",
        str(config.ctx_size),
        "--n-gpu-layers",
        str(config.gpu_layers),
    ]
    if config.threads is not None:
        cmd += ["--threads", str(config.threads)]
    if not any(arg.partition("=")[0] in PARALLEL_FLAGS for arg in config.extra_args):
        cmd += ["--parallel", str(config.max_concurrency)]  # llama-server's default is 4 slots
    return cmd + list(config.extra_args)
