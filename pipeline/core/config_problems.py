"""What a config check reports: problems with their TOML key path, and the error that holds them.

Example:
    >>> print(ConfigProblem("mqtt.tls.ca_file", "file '/etc/ca.pem' does not exist"))
    mqtt.tls.ca_file: file '/etc/ca.pem' does not exist
    >>> key_path(("watches", 1, "zones"))
    'watches[1].zones'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.core.redact import redact


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem: where (dotted key path; empty for the whole file) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return redact(f"{self.path}: {self.message}" if self.path else self.message)


class ConfigError(Exception):
    """A config that cannot run; ``problems`` holds one entry per problem."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(str(p) for p in self.problems))


def key_path(loc: Iterable[int | str]) -> str:
    """Format a pydantic location as a TOML key path.

    Example:
        >>> key_path(("backends", "vlm", "model"))
        'backends.vlm.model'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
