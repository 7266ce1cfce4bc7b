"""YAML that may be hostile, read within bounds: spec files and `--set` values.

PyYAML's SafeLoader builds no arbitrary objects, but a small file can still take all the
memory or the stack: nine levels of nine aliases ("billion laughs") expand to 387 million
nodes, 10,000 nested brackets overflow the composer's recursion, and a 5,000-digit integer
trips Python's int-conversion limit inside the constructor. So before anything expands:

- a spec over MAX_BYTES is refused unread;
- the composer refuses nesting deeper than MAX_DEPTH while it composes (the parser and the
  scanner are not recursive, so this bounds the only recursion), more than MAX_NODES nodes
  written out (which bounds the time, about a second at worst), and a whole number of more
  than MAX_DIGITS digits;
- the composed node graph, where an alias shares the node it names, is measured with one
  visit per node: more than MAX_NODES nodes once aliases are expanded, an expanded depth past
  MAX_DEPTH, or an alias inside the node it names is refused;
- only then are values constructed (and `specfile._line_index` walks the paths).

Each refusal is a SpecError naming the file and line and the limit. A value the constructor
still cannot read (`2024-13-45`, `!!int "x"`) is a located SpecError too.

Floats follow YAML 1.2: PyYAML reads YAML 1.1, where `1e-3` and `1e6` are strings (1.1
floats need a dot and a signed exponent); here they are the floats a user means. Integers,
booleans and nulls keep PyYAML's SafeLoader rules. Pure Python: no torch.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from elubench.core.errors import SpecError
from elubench.core.limits import MAX_BYTES, MAX_DEPTH, MAX_DIGITS, MAX_NODES

FLOAT_TAG = "tag:yaml.org,2002:float"
INT_TAG = "tag:yaml.org,2002:int"

# YAML 1.2's float (a dot or an exponent, the exponent's sign optional) plus YAML 1.1's
# spellings PyYAML already took (underscores, base 60). A digit must follow a leading dot.
FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# PyYAML's YAML 1.1 integer, but a digit must follow 0b / 0x: PyYAML took `0x_` and `0b_` for
# integers and failed to convert them (a ValueError traceback); here they are text.
INT = re.compile(
    r"""^(?:[-+]?0b[0-1][0-1_]*
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F][0-9a-fA-F_]*
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)


def short(value: Any, limit: int = 60) -> str:
    """repr() cut to `limit` characters: error messages quote values, never whole files."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a whole number of about {int(value.bit_length() * 0.30103)} digits"
    if isinstance(value, (list, tuple, dict)):
        import reprlib

        shorter = reprlib.Repr()
        shorter.maxlevel, shorter.maxstring, shorter.maxother = 3, limit, limit
        text = shorter.repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats, bounded nesting and located conversion errors."""

    source = "<yaml>"

    def __init__(self, stream, source: str = "<yaml>"):
        super().__init__(stream)
        self.source = source
        self.depth = self.nodes = 0

    def where(self, node_or_mark) -> str:
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        return f"{self.source}:{mark.line + 1}"

    def compose_node(self, parent, index):
        self.depth += 1
        self.nodes += 1  # aliases too: a cheap bound on the work before the expansion check
        try:
            if self.depth > MAX_DEPTH:
                raise SpecError(
                    f"the YAML nests deeper than {MAX_DEPTH} levels (a spec needs about 6)",
                    where=self.where(self.peek_event()),
                )
            if self.nodes > MAX_NODES:
                raise SpecError(
                    f"the YAML holds more than {MAX_NODES:,} values; a spec has a few hundred",
                    where=self.where(self.peek_event()),
                )
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, yaml.ScalarNode) and node.tag == INT_TAG:
            digits = sum(char.isalnum() for char in node.value)
            if digits > MAX_DIGITS:
                raise SpecError(
                    f"a whole number of {digits} digits; no spec value needs more "
                    f"than {MAX_DIGITS}",
                    where=self.where(node),
                )
        return node

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
            raise SpecError(
                f"cannot read the value {short(node.value)}: {exc}", where=self.where(node)
            ) from None


SpecLoader.yaml_implicit_resolvers = {
    first: [
        (tag, FLOAT if tag == FLOAT_TAG else INT if tag == INT_TAG else regexp)
        for tag, regexp in resolvers
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root, where) -> dict[int, tuple[int, int]]:
    """(expanded node count, capped at MAX_NODES + 1; expanded depth) of every node, by
    identity: an alias shares its node, so each is visited once however often it is named."""
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()  # the nodes on the path to the current one
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            kids = [sizes[id(kid)] for kid in _children(node)]
            sizes[key] = (
                min(MAX_NODES + 1, 1 + sum(size for size, _ in kids)),
                1 + max((depth for _, depth in kids), default=0),
            )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise SpecError(
                "an alias (*name) names a node that contains it; a spec cannot be recursive",
                where=where(node),
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in reversed(_children(node)) if id(kid) not in sizes)
    return sizes


def check_expansion(root, where) -> None:
    """Refuse a node graph that expands past MAX_NODES nodes or MAX_DEPTH levels."""
    sizes = _measure(root, where)
    count, depth = sizes[id(root)]
    if count <= MAX_NODES and depth <= MAX_DEPTH:
        return
    culprit = root  # the first top-level entry too large on its own, else the whole document
    entries = (
        [(value, key) for key, value in root.value]
        if isinstance(root, yaml.MappingNode)
        else [(node, node) for node in root.value]
        if isinstance(root, yaml.SequenceNode)
        else []
    )
    for node, at in entries:
        if sizes[id(node)][0] > MAX_NODES or sizes[id(node)][1] >= MAX_DEPTH:
            culprit = at
            break
    if count > MAX_NODES:
        raise SpecError(
            f"the YAML holds more than {MAX_NODES:,} values, counting each alias "
            "(*name) as the values it repeats; a spec has a few hundred",
            where=where(culprit),
        )
    raise SpecError(
        f"the YAML nests deeper than {MAX_DEPTH} levels once its aliases (*name) are expanded",
        where=where(culprit),
    )


def load(text: str, source: str) -> tuple[Any, Any]:
    """(the data, its composed root node or None) of one YAML document, within the bounds.

    Raises SpecError for a bound or an unreadable value, yaml.YAMLError for malformed YAML.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError(
            f"{size:,} bytes is more than a spec may have ({MAX_BYTES // 1024} KiB)", where=source
        )
    loader = SpecLoader(text, source)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        check_expansion(root, loader.where)
        return loader.construct_document(root), root
    except RecursionError:  # a safety net: the bounds above should make this unreachable
        raise SpecError(
            f"the YAML nests too deeply to read (limit {MAX_DEPTH})", where=source
        ) from None
    finally:
        loader.dispose()
