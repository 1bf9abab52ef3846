"""Parse what real vision models answer, in your own Rx stream.

Run: ``.venv/bin/python examples/parse_model_answers.py``

Models wrap JSON in code fences, add prose, think aloud in ``<think>`` blocks,
leave trailing commas, send numbers as strings or out of range, or send
nothing. ``parse_answer`` turns each into a ``Verdict``: an answer with
``next_run_in`` clamped to [1, 300] s, or a recorded bad answer (``empty`` /
``unparseable``) that the watch retries in 30 s. It never raises.
"""

from __future__ import annotations

import reactivex
from reactivex import operators as ops

from operators.answer_parser import parse_answer
from pipeline.core.verdict import Verdict

ANSWERS: list[str | None] = [
    '{"condition_met": false, "next_run_in": 120, "reasoning": "The porch is empty."}',
    '```json\n{"condition_met": true, "next_run_in": 5, "reasoning": "A box by the door.",'
    ' "notification_message": "Package on the porch"}\n```',
    "<think>The user wants a package... I see a person.</think>\n"
    '{"condition_met": false, "next_run_in": "4", "reasoning": "Someone is at the door.",}',
    'Sure! Here is my answer: {"condition_met": false, "next_run_in": 900} Hope it helps.',
    '{"condition_met": "maybe", "next_run_in": 10}',
    "I cannot see the porch clearly.",
    "",
    None,
]


def describe(pair: tuple[int, Verdict]) -> str:
    i, v = pair
    text = v.reasoning or v.error or ""
    return (f"{i}: {v.kind.value:<11} met={v.condition_met!s:<5} "
            f"next={v.next_run_in:5.0f}s  {text}")  # fmt: skip


def main() -> None:
    reactivex.from_iterable(ANSWERS).pipe(
        ops.map(parse_answer),  # the pure function is the operator's whole body
        ops.map_indexed(lambda v, i: (i, v)),
        ops.map(describe),
    ).subscribe(print)


if __name__ == "__main__":
    main()
