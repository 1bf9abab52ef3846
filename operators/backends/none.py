"""The ``none`` backend: frames only, never met, zero cost.

Example:
    >>> from operators.backends.base import LookRequest
    >>> v = NoneBackend("none").judge(LookRequest(watch="w", camera="c", condition="x"))
    >>> v.condition_met, v.next_run_in
    (False, 30.0)
"""

from __future__ import annotations

from operators.backends.base import Availability, LookRequest
from pipeline.core.config import NoneBackendConfig
from pipeline.core.verdict import Verdict


class NoneBackend:
    """No model: every look is "not met", next look after ``next_run_in_s``."""

    type = "none"
    needs_gpu = False
    ram_mb = 0
    takes_images = False

    def __init__(self, name: str, config: NoneBackendConfig | None = None) -> None:
        self.name = name
        self.config = config or NoneBackendConfig.model_validate({})

    def availability(self) -> Availability:
        """Report it as always available."""
        return Availability(True, "no model; frames only")

    def start(self) -> None:
        """Do nothing."""

    def stop(self) -> None:
        """Do nothing."""

    def judge(self, request: LookRequest) -> Verdict:
        """Answer "not met" at once."""
        return Verdict.answered(False, self.config.next_run_in_s, "No model configured.")

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Return an empty description."""
        return ""
