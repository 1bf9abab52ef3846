"""Turn a vision model's raw answer text into a :class:`~pipeline.core.verdict.Verdict`.

Real models wrap their JSON in code fences, put prose around it, emit
``<think>...</think>`` blocks, leave trailing commas, send numbers and booleans
as strings, and give ``next_run_in`` values out of range. :func:`parse_answer`
takes what is parseable, validates it with pydantic and clamps; anything else
becomes a failed verdict with the baseline's 30 s retry, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.core.verdict import AnswerKind, Verdict

_THINK = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_TRUE = {"true", "yes", "y", "1", "met"}
_FALSE = {"false", "no", "n", "0", "not met", "not_met", "none", "null", ""}
_MAX_TEXT = 2000
_MAX_STARTS = 16
_MAX_INPUT = 50_000


class Answer(BaseModel):
    """The JSON object a watch asks its model for (lenient about types).

    Example:
        >>> Answer.model_validate({"condition_met": "true", "next_run_in": "5"}).next_run_in
        5.0
    """

    model_config = ConfigDict(extra="ignore")

    condition_met: bool = Field(description="The model is confident the condition holds.")
    next_run_in: float | None = Field(None, description="Seconds until the next look.")
    reasoning: str = Field("", description="One or two sentences.")
    notification_message: str | None = Field(None, description="Short text, only when met.")

    @field_validator("condition_met", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ValueError(f"cannot read {v!r} as true or false")
        if isinstance(v, int | float) and not isinstance(v, bool):
            return bool(v)
        return v

    @field_validator("next_run_in", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        if v is None or isinstance(v, bool):
            return None
        if isinstance(v, str):
            m = re.search(r"-?\d+(?:\.\d+)?", v)
            return float(m.group(0)) if m else None
        if isinstance(v, int | float):
            f = float(v)
            return f if f == f and abs(f) != float("inf") else None
        return None

    @field_validator("reasoning", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if v is None:
            return ""
        if not isinstance(v, str):
            v = json.dumps(v) if isinstance(v, dict | list) else str(v)
        return v.strip()[:_MAX_TEXT]

    @field_validator("notification_message", mode="before")
    @classmethod
    def _message(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str):
            v = str(v)
        v = v.strip()[:_MAX_TEXT]
        return v or None


def _candidates(text: str) -> Iterator[str]:
    """JSON-looking snippets of ``text``, most likely first (lazily)."""
    for m in _FENCE.finditer(text):
        yield m.group(1).strip()
    # Balanced {...} spans, scanned with string awareness, at most a few starts.
    starts = [i for i, c in enumerate(text) if c == "{"][:_MAX_STARTS]
    for start in starts:
        end = _matching_brace(text, start)
        if end is not None:
            yield text[start : end + 1]
    stripped = text.strip()
    if stripped.startswith("{"):
        closed = close_cut_off(stripped)
        if closed is not None:
            yield closed
    yield stripped


_TAIL = re.compile(
    r'(?P<sep>[,{])\s*(?P<member>"(?:[^"\\]|\\.)*"\s*(?::\s*(?P<value>[^,{}\[\]"]*))?)?\s*$'
)
"""The last member of a cut-off object: its separator, key, and a literal value if any."""
_OPEN_VALUE = re.compile(r'"(?P<key>(?:[^"\\]|\\.)*)"\s*:\s*$')
_KEPT_WHEN_CUT = "reasoning"
"""The one string value kept when cut off (marked with an ellipsis); others are dropped."""


def close_cut_off(text: str) -> str | None:
    """Close a JSON object cut off at ``max_tokens``, dropping its unfinished last member.

    A cut-off ``reasoning`` is kept as far as it came, ending in an ellipsis; a
    member cut inside its key, after its colon, inside ``true``/``false`` or
    inside any other string (a notification must not be half a word) is
    dropped. None when the text is not a cut-off object.

    Example:
        >>> close_cut_off('{"condition_met": false, "next_run_in": 30, "reasoning": "The po')
        '{"condition_met": false, "next_run_in": 30, "reasoning": "The po…"}'
        >>> close_cut_off('{"condition_met": true, "next_run_in": 30, "notification_message": "Pa')
        '{"condition_met": true, "next_run_in": 30}'
        >>> close_cut_off('{"a": 1}') is None
        True
    """
    depth, open_at = _scan(text)
    if depth <= 0:
        return None
    body = text
    if open_at is not None:
        value_of = _OPEN_VALUE.search(text[:open_at])
        if value_of is not None and value_of["key"] == _KEPT_WHEN_CUT:
            body = text.rstrip("\\") + '…"'
        else:
            body = text[:open_at]
    tail = _TAIL.search(body)
    if tail is not None and tail["member"] and not _complete(tail["value"]):
        body = body[: tail.start()] + ("{" if tail["sep"] == "{" else "")
    return body.rstrip().rstrip(",") + "}" * depth


def _complete(value: str | None) -> bool:
    """Whether a member's literal value ends whole: ``true``, ``false``, ``null``, a number.

    A number cut short cannot be told from a whole one; it is taken as it is
    (next_run_in is clamped anyway).
    """
    value = (value or "").strip()
    return value in ("true", "false", "null") or bool(re.fullmatch(r"-?\d+(?:\.\d+)?", value))


def _scan(text: str) -> tuple[int, int | None]:
    """(open objects and arrays, start of the string still open or None) of a JSON prefix."""
    depth = 0
    open_at: int | None = None
    escape = False
    for i, c in enumerate(text):
        if open_at is not None:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                open_at = None
        elif c == '"':
            open_at = i
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
    return depth, open_at


def _matching_brace(text: str, start: int) -> int | None:
    depth = 0
    in_str = False
    escape = False
    for i in range(start, len(text)):
        c = text[i]
        if in_str:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _loads(snippet: str) -> Any:
    try:
        return json.loads(snippet)
    except ValueError:
        pass
    fixed = _TRAILING_COMMA.sub(r"\1", snippet)
    # Python-style literals and single quotes, as small models sometimes write them.
    fixed = re.sub(r"\bTrue\b", "true", fixed)
    fixed = re.sub(r"\bFalse\b", "false", fixed)
    fixed = re.sub(r"\bNone\b", "null", fixed)
    try:
        return json.loads(fixed)
    except ValueError:
        pass
    if "'" in fixed and '"' not in fixed:
        try:
            return json.loads(fixed.replace("'", '"'))
        except ValueError:
            pass
    return None


def parse_answer(text: str | None) -> Verdict:
    """Parse a model's answer into a verdict; never raises.

    Example:
        >>> v = parse_answer('```json\\n{"condition_met": false, "next_run_in": 900,'
        ...                  ' "reasoning": "Empty porch.",}\\n```')
        >>> v.kind.value, v.next_run_in, v.reasoning
        ('not_met', 300.0, 'Empty porch.')
        >>> parse_answer("").kind.value
        'empty'

    Args:
        text: the model's raw answer (``None`` counts as empty).

    Returns:
        ``Verdict.answered(...)`` with ``next_run_in`` clamped to [1, 300] (30 when
        missing), or ``Verdict.failed(EMPTY | UNPARSEABLE, ...)`` (retry in 30 s),
        with ``raw_answer`` set to ``text``.
    """
    if text is None or not text.strip():
        return Verdict.failed(AnswerKind.EMPTY, "the model gave an empty answer", raw_answer=text)
    body = _THINK.sub("", text[:_MAX_INPUT]).strip()
    if not body:
        return Verdict.failed(
            AnswerKind.EMPTY, "the model gave only a thinking block", raw_answer=text
        )
    last_error = "no JSON object found in the answer"
    for snippet in _candidates(body):
        data = _loads(snippet)
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, dict):
            continue
        try:
            answer = Answer.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "answer"
            last_error = f"invalid answer: {where}: {first['msg']}"
            continue
        return Verdict.answered(
            answer.condition_met,
            answer.next_run_in,
            answer.reasoning,
            answer.notification_message,
            raw_answer=text,
        )
    return Verdict.failed(AnswerKind.UNPARSEABLE, last_error, raw_answer=text)
