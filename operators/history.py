"""A watch's conversation memory: the last N user/assistant pairs of its looks."""

from __future__ import annotations

from collections import deque

from operators.backends.base import ChatTurn
from pipeline.core.verdict import AnswerKind, Verdict


class History:
    """The last ``max_turns`` looks as chat turns; images only in the newest ``images``.

    The system prompt is the backend's business; this keeps the turns that
    follow it. Older turns beyond ``images`` keep their text ("Frame captured
    at ...", the model's answer) but drop the JPEG, so each call sends fewer
    images.

    Example:
        >>> h = History(max_turns=2, images=1)
        >>> for i in range(3):
        ...     h.add(f"Frame captured at 12:00:0{i}.", b"jpeg", '{"condition_met": false}')
        >>> [(t.user_text[-3:], t.jpeg is not None) for t in h.turns()]
        [('01.', False), ('02.', True)]

    Args:
        max_turns: user/assistant pairs kept (0 keeps none).
        images: keep JPEGs only in this many newest turns (``None``: in all of them).
    """

    def __init__(self, max_turns: int = 10, images: int | None = None) -> None:
        if max_turns < 0:
            raise ValueError(f"max_turns must not be negative, got {max_turns}.")
        if images is not None and images < 0:
            raise ValueError(f"images must not be negative, got {images}.")
        self.max_turns = max_turns
        self.images = images
        self._turns: deque[ChatTurn] = deque(maxlen=max_turns or 1)

    def __len__(self) -> int:
        return len(self._turns) if self.max_turns else 0

    def add(self, user_text: str, jpeg: bytes | None, assistant_text: str) -> None:
        """Append one completed look (a user turn and the model's answer)."""
        if self.max_turns:
            self._turns.append(ChatTurn(user_text, jpeg, assistant_text))

    def record(self, user_text: str, jpeg: bytes | None, verdict: Verdict) -> bool:
        """Append the look if its answer belongs in the conversation; say whether it did.

        Answers with text (met, not met, unparseable) are kept, so the model sees
        what it said. An empty answer drops the dangling user turn (the
        baseline), and looks that reached no model (no frame, unavailable,
        error) leave no trace.
        """
        kept = (AnswerKind.MET, AnswerKind.NOT_MET, AnswerKind.UNPARSEABLE)
        if verdict.kind in kept and verdict.raw_answer:
            self.add(user_text, jpeg, verdict.raw_answer)
            return True
        return False

    def clear(self) -> None:
        """Forget every turn (a repeat-mode watch re-arming)."""
        self._turns.clear()

    def turns(self) -> tuple[ChatTurn, ...]:
        """Return the kept turns, oldest first, older ones without images when configured."""
        if not self.max_turns:
            return ()
        turns = tuple(self._turns)
        if self.images is None or self.images >= len(turns):
            return turns
        cut = len(turns) - self.images
        return tuple(
            ChatTurn(t.user_text, None, t.assistant_text) if i < cut else t
            for i, t in enumerate(turns)
        )
