"""The baseline system prompt and the chat messages of one look.

Example:
    >>> from operators.backends.base import LookRequest
    >>> req = LookRequest(watch="w", camera="porch", condition="a package is on the porch",
    ...                   jpeg=b"\\xff\\xd8", user_text="Frame captured at 12:00:05.")
    >>> msgs = build_messages(req, build_system_prompt(req.condition))
    >>> [m["role"] for m in msgs]
    ['system', 'user']
    >>> msgs[1]["content"][1]["image_url"]["url"][:23]
    'data:image/jpeg;base64,'
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from operators.backends.base import LookRequest

SYSTEM_PROMPT_TEMPLATE = """\
You are watching a camera feed. Decide whether this condition is met:

Condition: {condition}
{focus}
You receive frames from the camera over time; each user turn says when its frame \
was captured. Earlier frames in this conversation are context; judge the newest frame.

Answer with JSON only, no other text and no code fences, exactly these keys:
{{"condition_met": false, "next_run_in": 30, "reasoning": "...", "notification_message": ""}}

- condition_met: true only when you are confident the condition is met in the newest frame.
- next_run_in: integer seconds (1 to 300) until the next frame should be checked:
  60-300 when the scene is empty or nothing relevant is visible;
  3-10 when a relevant object is visible anywhere in the frame;
  1-5 when the condition seems to be forming or about to be met.
- reasoning: one or two sentences on what you see and why.
- notification_message: a short, phone-friendly message saying what happened, \
only when condition_met is true; otherwise an empty string.
"""

REASONING_MAX_CHARS = 400
"""``maxLength`` of ``reasoning`` in the answer schema (one or two sentences)."""
MESSAGE_MAX_CHARS = 160
"""``maxLength`` of ``notification_message`` (a phone notification)."""

#: JSON schema of the answer, for servers that accept ``response_format`` with a schema.
#: Every string is bounded: servers that constrain output by grammar (llama.cpp)
#: otherwise let a small model write until ``max_tokens`` and cut the JSON off.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "condition_met": {"type": "boolean"},
        "next_run_in": {"type": "integer", "minimum": 1, "maximum": 300},
        "reasoning": {"type": "string", "maxLength": REASONING_MAX_CHARS},
        "notification_message": {"type": "string", "maxLength": MESSAGE_MAX_CHARS},
    },
    "required": ["condition_met", "next_run_in", "reasoning", "notification_message"],
    "additionalProperties": False,
}


def loose_schema() -> dict[str, Any]:
    """:data:`ANSWER_SCHEMA` without ``maxLength``, ``minimum`` and ``maximum``.

    For servers whose strict structured output refuses those keywords; the
    prompt still asks for short strings and 1..300, and the answer is clamped.

    Example:
        >>> loose_schema()["properties"]["next_run_in"]
        {'type': 'integer'}
    """
    bounds = ("maxLength", "minimum", "maximum")
    properties = {
        name: {k: v for k, v in spec.items() if k not in bounds}
        for name, spec in ANSWER_SCHEMA["properties"].items()
    }
    return {**ANSWER_SCHEMA, "properties": properties}


def focus_text(labels: Sequence[str] = (), zones: Sequence[str] = ()) -> str:
    """Return the focus lines of the prompt (object types and zones), empty when there is none.

    Example:
        >>> focus_text(["person", "car"], ["driveway"])
        'Focus on these object types: person, car.\\nFocus on these zones: driveway.\\n'
    """
    lines = []
    if labels:
        lines.append(f"Focus on these object types: {', '.join(labels)}.")
    if zones:
        lines.append(f"Focus on these zones: {', '.join(zones)}.")
    return "".join(line + "\n" for line in lines)


def build_system_prompt(
    condition: str,
    labels: Sequence[str] = (),
    zones: Sequence[str] = (),
    template: str = SYSTEM_PROMPT_TEMPLATE,
) -> str:
    """Build the baseline system prompt for one watch.

    ``template`` may use ``{condition}`` and ``{focus}`` (literal braces doubled).

    Example:
        >>> p = build_system_prompt("the gate is open", ["person"])
        >>> "Condition: the gate is open" in p and "person" in p
        True
    """
    return template.format(condition=condition.strip(), focus=focus_text(labels, zones))


def system_prompt_for(request: LookRequest, template: str = SYSTEM_PROMPT_TEMPLATE) -> str:
    """:func:`build_system_prompt` from a request's condition, labels and zones."""
    return build_system_prompt(request.condition, request.labels, request.zones, template)


def image_data_url(jpeg: bytes) -> str:
    """Encode a JPEG as a ``data:`` URL.

    Example:
        >>> image_data_url(b"ab")
        'data:image/jpeg;base64,YWI='
    """
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def user_content(text: str, jpeg: bytes | None) -> str | list[dict[str, Any]]:
    """Build a user turn's content: text only, or text plus the image as a data URL."""
    if jpeg is None:
        return text
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": image_data_url(jpeg)}},
    ]


def build_messages(request: LookRequest, system_prompt: str) -> list[dict[str, Any]]:
    """Chat messages for one look: system, the history turns, then the current frame.

    History turns carry their image when they kept one (``ChatTurn.jpeg``), else
    their text only. The current turn carries ``request.user_text`` and
    ``request.jpeg`` (text only when there is no JPEG).

    Args:
        request: the look.
        system_prompt: from :func:`build_system_prompt`.

    Returns:
        A list of OpenAI chat ``messages``.
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
    for turn in request.history:
        messages.append({"role": "user", "content": user_content(turn.user_text, turn.jpeg)})
        messages.append({"role": "assistant", "content": turn.assistant_text})
    messages.append({"role": "user", "content": user_content(request.user_text, request.jpeg)})
    return messages
