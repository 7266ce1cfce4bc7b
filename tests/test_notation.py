import pytest
from hypothesis import given, settings, strategies as st

from elubench.errors import ElubenchError, NotationError
from elubench.notation import Layer, format_stack, parse_architecture, parse_stack


@pytest.mark.parametrize("text, expected", [
    ("1x192x5", [Layer(1, 192, 5)]),
    ("1×192×5", [Layer(1, 192, 5)]),
    (" 1 × 192 × 5 ", [Layer(1, 192, 5)]),
    ("2×4096×FC", [Layer(2, 4096, None)]),
    ("2x4096xfc", [Layer(2, 4096, None)]),
    ("1x192x1, 1x240x3", [Layer(1, 192, 1), Layer(1, 240, 3)]),
    ("[1x192x1, 1×240×3]", [Layer(1, 192, 1), Layer(1, 240, 3)]),
])
def test_parse_stack(text, expected):
    assert parse_stack(text) == expected


def test_parse_architecture_from_the_paper():
    text = "[1×192×5] [1×192×1, 1×240×3] [1×240×1, 1×260×2] [1×260×1, 1×280×2] " \
           "[1×280×1, 1×300×2] [1×300×1] [1×100×1]"
    stacks = parse_architecture(text)
    assert len(stacks) == 7
    assert stacks[1] == [Layer(1, 192, 1), Layer(1, 240, 3)]
    assert format_stack(stacks[4]) == "1x280x1, 1x300x2"


@pytest.mark.parametrize("text, column, words", [
    ("1x192y1", 5, "expected 'x' or '×' after the number of units"),
    ("1x192", 5, "expected 'x' or '×' after the number of units"),
    ("x192x3", 0, "expected the number of layers"),
    ("1x0x3", 2, "the number of units must be at least 1"),
    ("1x192x3q", 7, "unexpected 'q'"),
    ("1x192xF", 6, "expected a receptive field"),
    ("1x192x1,, 1x240x3", 8, "empty layer"),
    ("1x192x1,", 8, "empty layer"),
])
def test_errors_quote_the_text_and_point_at_the_bad_part(text, column, words):
    with pytest.raises(NotationError) as info:
        parse_stack(text)
    message = info.value.message
    assert words in message
    lines = message.splitlines()
    assert lines[1].strip() == text.strip()
    caret_line = lines[2]
    assert caret_line.index("^") - 4 == column  # four spaces of indent before the quoted text


def test_architecture_errors():
    with pytest.raises(NotationError, match="outside the brackets"):
        parse_architecture("[1x8x3] 1x8x3")
    with pytest.raises(NotationError, match="stray bracket"):
        parse_architecture("[1x8x3] [1x8x3")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789x×FC ,[]-.ab\t", max_size=30))
def test_only_notation_errors_come_out(text):
    try:
        parse_architecture(text)
    except ElubenchError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 999), st.one_of(st.none(), st.integers(1, 7))),
                min_size=1, max_size=4))
def test_format_then_parse_round_trips(parts):
    layers = [Layer(*p) for p in parts]
    assert parse_stack(format_stack(layers)) == layers
