import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elubench.core.errors import NotationError
from elubench.spec.notation import Layer, format_stack, parse_architecture, parse_stack


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1x192x5", [Layer(1, 192, 5)]),
        ("1×192×5", [Layer(1, 192, 5)]),
        (" 1 × 192 × 5 ", [Layer(1, 192, 5)]),
        ("2×4096×FC", [Layer(2, 4096, None)]),
        ("2x4096xfc", [Layer(2, 4096, None)]),
        ("1x192x1, 1x240x3", [Layer(1, 192, 1), Layer(1, 240, 3)]),
        ("[1x192x1, 1×240×3]", [Layer(1, 192, 1), Layer(1, 240, 3)]),
    ],
)
def test_parse_stack(text, expected):
    assert parse_stack(text) == expected


def test_parse_architecture_from_the_paper():
    text = (
        "[1×192×5] [1×192×1, 1×240×3] [1×240×1, 1×260×2] [1×260×1, 1×280×2] "
        "[1×280×1, 1×300×2] [1×300×1] [1×100×1]"
    )
    stacks = parse_architecture(text)
    assert len(stacks) == 7
    assert stacks[1] == [Layer(1, 192, 1), Layer(1, 240, 3)]
    assert format_stack(stacks[4]) == "1x280x1, 1x300x2"


@pytest.mark.parametrize(
    "text, column, words",
    [
        ("1x192y1", 5, "expected 'x' or '×' after the number of units"),
        ("1x192", 5, "expected 'x' or '×' after the number of units"),
        ("x192x3", 0, "expected the number of layers"),
        ("1x0x3", 2, "the number of units must be at least 1"),
        ("1x192x3q", 7, "unexpected 'q'"),
        ("1x192xF", 6, "expected a receptive field"),
        ("1x192x1,, 1x240x3", 8, "empty layer"),
        ("1x192x1,", 8, "empty layer"),
        # ASCII digits only: str.isdigit() would take these, int() rejects the first
        ("1x19²x3", 4, "expected 'x' or '×' after the number of units, found '²'"),
        ("1x8x3²", 5, "unexpected '²'"),
        ("１x８x３", 0, "expected the number of layers, found '１'"),
        ("1x８x3", 2, "expected the number of units, found '８'"),
        ("١x٨x٣", 0, "expected the number of layers, found '١'"),
        ("1x8x٣", 4, "expected a receptive field (a kernel size such as 3, or FC), found '٣'"),
    ],
)
def test_errors_quote_the_text_and_point_at_the_bad_part(text, column, words):
    with pytest.raises(NotationError) as info:
        parse_stack(text)
    message = info.value.message
    assert words in message
    lines = message.splitlines()
    assert lines[1].strip() == text.strip()
    caret_line = lines[2]
    assert caret_line.index("^") - 4 == column  # four spaces of indent before the quoted text


@pytest.mark.parametrize("text", ["[1x8x3] [1x8x３]", "[1x8x3] [1x٨x3]", "[1x8x3] [1x8x3²]"])
def test_non_ascii_digits_are_notation_errors_with_a_hint(text):
    with pytest.raises(NotationError) as info:
        parse_architecture(text)
    assert "not an ASCII digit; write numbers with 0-9" in info.value.message
    assert info.value.hint and "1x192x5" in info.value.hint


def test_architecture_errors():
    with pytest.raises(NotationError, match="outside the brackets"):
        parse_architecture("[1x8x3] 1x8x3")
    with pytest.raises(NotationError, match="stray bracket"):
        parse_architecture("[1x8x3] [1x8x3")


# Characters a user may type: ASCII digits and separators, plus look-alike digits that
# str.isdigit() accepts (superscript, full-width, Arabic-Indic) and other strays.
ALPHABET = "0123456789x×XFCfc ,[]-.ab\t²³１８٣۵"

_spaces = st.text(alphabet=" \t", max_size=2)


@st.composite
def _near_notation(draw):
    """Bracketed stacks of layers with random spacing, separators, case and leading zeros,
    sometimes damaged by a character from ALPHABET: text that often parses, often not."""

    def number():
        return draw(st.sampled_from(["", "0", "00"])) + str(draw(st.integers(0, 300)))

    def sep():
        return draw(_spaces) + draw(st.sampled_from(["x", "X", "×"])) + draw(_spaces)

    def layer():
        kernel = draw(
            st.one_of(st.builds(str, st.integers(0, 9)), st.sampled_from(["FC", "fc", "Fc"]))
        )
        return draw(_spaces) + number() + sep() + number() + sep() + kernel + draw(_spaces)

    stacks = [
        "[" + ",".join(layer() for _ in range(draw(st.integers(1, 3)))) + "]"
        for _ in range(draw(st.integers(1, 3)))
    ]
    text = draw(_spaces).join(stacks)
    if draw(st.booleans()) and text:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(ALPHABET)) + text[at:]
    return text


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet=ALPHABET, max_size=30), _near_notation()))
def test_only_notation_errors_come_out(text):
    try:
        parse_architecture(text)
    except NotationError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet=ALPHABET, max_size=30), _near_notation()))
def test_text_layers_text_layers_round_trips(text):
    """Text that parses, formatted back with one bracket per stack, parses to the same stacks."""
    try:
        stacks = parse_architecture(text)
    except NotationError:
        return
    assert stacks and all(stacks)
    again = parse_architecture(" ".join("[" + format_stack(s) + "]" for s in stacks))
    assert again == stacks


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 9), st.integers(1, 999), st.one_of(st.none(), st.integers(1, 7))),
        min_size=1,
        max_size=4,
    )
)
def test_format_then_parse_round_trips(parts):
    layers = [Layer(*p) for p in parts]
    assert parse_stack(format_stack(layers)) == layers
