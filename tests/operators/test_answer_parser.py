import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.answer_parser import parse_answer
from pipeline.core.verdict import AnswerKind

OK = (
    '{"condition_met": true, "next_run_in": 5, "reasoning": "A box.",'
    ' "notification_message": "Package!"}'
)


@pytest.mark.parametrize(
    ("text", "kind", "next_run_in", "reasoning", "message"),
    [
        (OK, AnswerKind.MET, 5.0, "A box.", "Package!"),
        ("```json\n" + OK + "\n```", AnswerKind.MET, 5.0, "A box.", "Package!"),
        ("```\n" + OK + "```", AnswerKind.MET, 5.0, "A box.", "Package!"),
        (
            "Sure! Here is my answer:\n" + OK + "\nLet me know.",
            AnswerKind.MET,
            5.0,
            "A box.",
            "Package!",
        ),
        (
            "<think>The porch {maybe} has a box.</think>\n" + OK,
            AnswerKind.MET,
            5.0,
            "A box.",
            "Package!",
        ),
        (
            '{"condition_met": false, "next_run_in": 60, "reasoning": "Empty.",}',
            AnswerKind.NOT_MET,
            60.0,
            "Empty.",
            None,
        ),
        (
            '{"condition_met": "false", "next_run_in": "45", "reasoning": "x"}',
            AnswerKind.NOT_MET,
            45.0,
            "x",
            None,
        ),
        ('{"condition_met": "yes", "next_run_in": "3 seconds"}', AnswerKind.MET, 3.0, "", None),
        ('{"condition_met": false, "next_run_in": 900}', AnswerKind.NOT_MET, 300.0, "", None),
        ('{"condition_met": false, "next_run_in": 0}', AnswerKind.NOT_MET, 1.0, "", None),
        ('{"condition_met": false, "next_run_in": -20}', AnswerKind.NOT_MET, 1.0, "", None),
        ('{"condition_met": false}', AnswerKind.NOT_MET, 30.0, "", None),
        ('{"condition_met": false, "next_run_in": null}', AnswerKind.NOT_MET, 30.0, "", None),
        ('{"condition_met": false, "next_run_in": "soon"}', AnswerKind.NOT_MET, 30.0, "", None),
        ("{'condition_met': True, 'next_run_in': 2}", AnswerKind.MET, 2.0, "", None),
        (
            '{"condition_met": false, "next_run_in": 10, "notification_message": "x"}',
            AnswerKind.NOT_MET,
            10.0,
            "",
            None,
        ),
        ('[{"condition_met": true, "next_run_in": 4}]', AnswerKind.MET, 4.0, "", None),
        (
            '{"condition_met": true, "next_run_in": 2, "reasoning": "He said \\"hi\\" {ok}"}',
            AnswerKind.MET,
            2.0,
            'He said "hi" {ok}',
            None,
        ),
        ('{"condition_met": false, "next_run_in": 20', AnswerKind.NOT_MET, 20.0, "", None),
        ("", AnswerKind.EMPTY, 30.0, "", None),
        ("   \n", AnswerKind.EMPTY, 30.0, "", None),
        (None, AnswerKind.EMPTY, 30.0, "", None),
        ("<think>still thinking", AnswerKind.EMPTY, 30.0, "", None),
        ("The condition is met.", AnswerKind.UNPARSEABLE, 30.0, "", None),
        ('{"next_run_in": 5}', AnswerKind.UNPARSEABLE, 30.0, "", None),
        ('{"condition_met": "perhaps"}', AnswerKind.UNPARSEABLE, 30.0, "", None),
        ("{not json at all}", AnswerKind.UNPARSEABLE, 30.0, "", None),
        ("[1, 2, 3]", AnswerKind.UNPARSEABLE, 30.0, "", None),
    ],
)
def test_parse_answer_table(
    text: str | None, kind: AnswerKind, next_run_in: float, reasoning: str, message: str | None
) -> None:
    v = parse_answer(text)
    assert v.kind == kind
    assert v.next_run_in == next_run_in
    assert v.reasoning == reasoning
    assert v.notification_message == message
    assert v.raw_answer == text
    if kind in (AnswerKind.EMPTY, AnswerKind.UNPARSEABLE):
        assert v.error
        assert not v.condition_met


@given(st.text(max_size=300))
def test_parse_answer_never_raises_and_clamps(text: str) -> None:
    v = parse_answer(text)
    assert 1.0 <= v.next_run_in <= 300.0


@given(st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True)))
def test_next_run_in_always_within_bounds(n: float) -> None:
    v = parse_answer('{"condition_met": false, "next_run_in": ' + str(n) + "}")
    assert 1.0 <= v.next_run_in <= 300.0
