"""The ELU paper's `layers x units x receptive field` notation.

    1x192x5           one conv layer, 192 units (channels), 5x5 receptive field
    1×192×5           the same, with the paper's multiplication sign
    2x4096xFC         two fully connected layers of 4096 units
    1x192x1, 1x240x3  one stack of two layers (comma-separated)
    [1x192x5] [1x192x1, 1x240x3]   several stacks in one string, one bracket each

A layer count is 1 to 1,000, units 1 to 65,536, a receptive field 1 to 1,024
(elubench.core.limits); digits past those are refused before int() reads them.

Numbers are ASCII digits 0-9 only: `str.isdigit()` would also take superscripts (`²`), which
`int()` then rejects, and full-width or Arabic-Indic digits, which would pass unnoticed.

Pure Python (no torch): the spec loader and `elubench show` use it at start-up.
Malformed text raises :class:`NotationError` quoting the text with a caret under the bad part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from elubench.core.errors import NotationError
from elubench.core.limits import MAX_COUNT, MAX_KERNEL, MAX_UNITS

SEPARATORS = ("x", "X", "×")
HINT = "write layers x units x receptive field, e.g. 1x192x5, 1×240×3 or 2x4096xFC"

# The largest numbers the notation takes (elubench.core.limits): far past any published net, small
# enough that a typo cannot ask for a layer no machine holds or a layout that never ends.
LIMITS = {"layers": MAX_COUNT, "units": MAX_UNITS, "receptive field (kernel size)": MAX_KERNEL}


@dataclass(frozen=True)
class Layer:
    """`count` identical layers of `units` units; `kernel` is the receptive field, None for FC."""

    count: int
    units: int
    kernel: int | None

    @property
    def is_fc(self) -> bool:
        return self.kernel is None

    def __str__(self) -> str:
        return f"{self.count}x{self.units}x{'FC' if self.kernel is None else self.kernel}"


def is_ascii_digit(char: str) -> bool:
    """True for 0-9 only (unlike str.isdigit, which takes any Unicode digit)."""
    return "0" <= char <= "9"


def _fail(text: str, pos: int, message: str) -> NotationError:
    """The message, the text (a window of it around `pos` when long) and a caret at `pos`."""
    if len(text) > 100:
        start = max(0, pos - 50)
        shown = (
            ("…" if start else "") + text[start : pos + 50] + ("…" if pos + 50 < len(text) else "")
        )
        pos = pos - start + (1 if start else 0)
        text = shown
    caret = " " * pos + "^"
    return NotationError(f"{message}\n    {text}\n    {caret}", hint=HINT)


def _parse_layer(text: str, start: int, end: int) -> Layer:
    """Parse text[start:end] as one `AxUxK` layer; positions in errors refer to `text`."""
    pos = start

    def skip_space() -> None:
        nonlocal pos
        while pos < end and text[pos].isspace():
            pos += 1

    def found() -> str:
        if pos >= end:
            return "found the end of the layer"
        char = text[pos]
        if char.isnumeric():  # ², ５, ٣, ...: looks like a number but is not 0-9
            return f"found {char!r} (not an ASCII digit; write numbers with 0-9)"
        return f"found {char!r}"

    def number(what: str) -> int:
        nonlocal pos
        skip_space()
        begin = pos
        while pos < end and is_ascii_digit(text[pos]):
            pos += 1
        if begin == pos:
            raise _fail(text, pos, f"expected the number of {what}, {found()}")
        digits = text[begin:pos].lstrip("0")
        limit = LIMITS[what]
        noun = "the receptive field" if what.startswith("receptive") else f"the number of {what}"
        if len(digits) > len(str(limit)):  # int() never sees a huge digit string
            raise _fail(
                text,
                begin,
                f"{noun} must be at most {limit:,}; this one has {len(digits):,} digits",
            )
        value = int(digits or "0")
        if value < 1:
            raise _fail(text, begin, f"the number of {what} must be at least 1, got {value}")
        if value > limit:
            raise _fail(text, begin, f"{noun} must be at most {limit:,}, got {value:,}")
        return value

    def separator(after: str) -> None:
        nonlocal pos
        skip_space()
        if pos >= end or text[pos] not in SEPARATORS:
            raise _fail(text, pos, f"expected 'x' or '×' after the {after}, {found()}")
        pos += 1

    count = number("layers")
    separator("number of layers")
    units = number("units")
    separator("number of units")
    skip_space()
    kernel: int | None
    if text[pos : min(pos + 2, end)].upper() == "FC":
        kernel = None
        pos += 2
    elif pos < end and is_ascii_digit(text[pos]):
        kernel = number("receptive field (kernel size)")
    else:
        raise _fail(
            text, pos, f"expected a receptive field (a kernel size such as 3, or FC), {found()}"
        )
    skip_space()
    if pos < end:
        layer = f"{count}x{units}x{'FC' if kernel is None else kernel}"
        raise _fail(
            text, pos, f"unexpected {found().removeprefix('found ')} after the layer {layer}"
        )
    return Layer(count, units, kernel)


def _parse_parts(text: str, start: int, end: int) -> list[Layer]:
    """Parse the comma-separated layers in text[start:end]."""
    layers = []
    part_start = start
    for pos in range(start, end + 1):
        if pos == end or text[pos] == ",":
            if not text[part_start:pos].strip():
                raise _fail(
                    text, part_start, "empty layer (two commas in a row, or a comma at an end)"
                )
            layers.append(_parse_layer(text, part_start, pos))
            part_start = pos + 1
    return layers


def parse_stack(text: str) -> list[Layer]:
    """Parse one stack: comma-separated layers, optionally inside one pair of brackets."""
    if not isinstance(text, str):
        raise NotationError(
            f"a stack must be text such as '1x192x1, 1x240x3', got {text!r}", hint=HINT
        )
    stripped = text.strip()
    if not stripped:
        raise NotationError("empty stack", hint=HINT)
    start = text.index(stripped[0])
    end = start + len(stripped)
    if text[start] == "[":
        if text[end - 1] != "]":
            raise _fail(text, end, "missing ']' at the end of the stack")
        start, end = start + 1, end - 1
    return _parse_parts(text, start, end)


def parse_architecture(text: str) -> list[list[Layer]]:
    """Parse several bracketed stacks in one string: `[1x192x5] [1x192x1, 1x240x3] ...`.

    Text without brackets is one stack.
    """
    if "[" not in text and "]" not in text:
        return [parse_stack(text)]
    stacks = []
    pos = 0
    for match in re.finditer(r"\[([^\[\]]*)\]", text):
        gap = text[pos : match.start()]
        if gap.strip():
            offset = pos + len(gap) - len(gap.lstrip())
            raise _fail(text, offset, "text outside the brackets; every stack goes in its own [ ]")
        stacks.append(_parse_parts(text, match.start(1), match.end(1)))
        pos = match.end()
    rest = text[pos:]
    if rest.strip():
        offset = pos + len(rest) - len(rest.lstrip())
        raise _fail(
            text,
            offset,
            "unbalanced or stray bracket"
            if "[" in rest or "]" in rest
            else "text outside the brackets; every stack goes in its own [ ]",
        )
    return stacks


def format_stack(layers: list[Layer]) -> str:
    return ", ".join(str(layer) for layer in layers)
