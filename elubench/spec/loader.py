"""Reading a spec: YAML with line numbers, command-line overrides, and errors located by file,
line and key path (or the `--set` flag that caused them).

`load_spec(path, overrides, width)` reads, overrides and validates; `validate_spec(raw)` takes a
mapping that is already loaded. Both raise SpecError with one message a user can act on, and
check the network's shapes before anything trains. Pure Python: no torch.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from elubench.core.errors import ElubenchError, SpecError
from elubench.spec import safe_yaml as safeyaml
from elubench.spec.notation import is_ascii_digit, parse_architecture, parse_stack
from elubench.spec.safe_yaml import short
from elubench.spec.schema import Spec


def _line_index(root, source: str) -> dict[tuple[str, ...], int]:
    """Map every key path of a composed YAML document to its 1-based line; reject duplicate
    keys. `root` has passed safeyaml's bounds, so the walk is small and shallow."""
    index: dict[tuple[str, ...], int] = {}

    def walk(node, path):
        index[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise SpecError(
                        f"key {short('.'.join(path + (key,)))} appears twice "
                        f"(lines {seen[key]} and {line})",
                        where=f"{source}:{line}",
                    )
                seen[key] = line
                index[path + (key,)] = line
                walk(value_node, path + (key,))
                index[path + (key,)] = line
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (str(i),))

    if root is not None:
        walk(root, ())
    return index


def _read_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The document and its key lines, read within safeyaml's bounds; one SpecError for any
    problem, located where the YAML says."""
    try:
        raw, root = safeyaml.load(text, source)
        return raw, _line_index(root, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"not valid YAML: {problem}", where=where) from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:  # a safety net
        raise SpecError(
            f"cannot read the YAML ({exc.__class__.__name__}: {short(str(exc), 120)})", where=source
        ) from None


def _parse_override(text: str) -> tuple[list[str], Any]:
    path, sep, raw = text.partition("=")
    parts = path.strip().split(".")
    if not sep or not path.strip() or any(not p for p in parts):
        raise SpecError(
            f"cannot read the override {text!r}",
            where="--set",
            hint="write key.path=value, e.g. --set train.iterations=2000",
        )
    if len(parts) > safeyaml.MAX_DEPTH:
        raise SpecError(
            f"a key path of {len(parts)} parts; a spec nests at most {safeyaml.MAX_DEPTH} deep",
            where="--set",
        )
    try:  # the same YAML rules as a spec file: 1e-3 is a float
        value = safeyaml.load(raw, "--set")[0] if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: take it as text and let the schema judge it
    except SpecError as exc:
        raise SpecError(exc.message, where=f"--set {short(text, 80)}", hint=exc.hint) from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:  # a safety net
        raise SpecError(
            f"cannot read the value ({exc.__class__.__name__})", where=f"--set {short(text, 80)}"
        ) from None
    return parts, value


def _is_index(part: str) -> bool:
    """A whole number in ASCII digits (str.isdigit() also takes '²', which int() rejects), of at
    most 18 of them (no list is longer; int() never sees a huge digit string)."""
    return 0 < len(part) <= 18 and all(is_ascii_digit(char) for char in part)


def apply_override(raw: dict, text: str) -> tuple[str, ...]:
    """Set one `key.path=value` in the raw mapping; return the path it set."""
    parts, value = _parse_override(text)
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not _is_index(part) or int(part) >= len(node):
                raise SpecError(
                    f"{'.'.join(parts[:depth])} is a list of {len(node)}; "
                    f"{part!r} is not an index in it",
                    where=f"--set {text}",
                )
            key: Any = int(part)
        elif isinstance(node, dict):
            key = (
                int(part)
                if _is_index(part) and (int(part) in node or any(isinstance(k, int) for k in node))
                else part
            )
        else:
            raise SpecError(
                f"{'.'.join(parts[:depth])} is a single value, it has no key {part!r}",
                where=f"--set {text}",
            )
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and (key not in node or node[key] is None):
                node[key] = {}
            node = node[key]
    return tuple(parts)


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys the schema allows at the mapping that holds `loc`'s last part."""
    model: Any = Spec
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        candidates = [field.annotation]
        model = None
        while candidates:
            ann = candidates.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                model = ann
                break
            if get_origin(ann) is not None:
                candidates.extend(get_args(ann))
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _describe(error: ErrorDetails) -> str:
    loc = error["loc"]
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        return f"unknown key {loc[-1]!r}" + (
            f"; allowed here: {', '.join(allowed)}" if allowed else ""
        )
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    message = error["msg"].removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error"):
        return message
    given = error.get("input")
    return f"{message} (got {short(given)})" if not isinstance(given, dict) else message


def _clean_loc(loc: tuple) -> tuple[str, ...]:
    """Drop pydantic's union-branch and validator names from a location."""
    out = []
    for part in loc:
        text = str(part)
        if (
            "[" in text
            or text in ("float", "int", "dict[int,float]", "StepLR", "list[str]")
            or text.startswith(("function-", "constrained-"))
        ):
            continue
        out.append(text)
    return tuple(out)


def _dotted(path: tuple[str, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if _is_index(part) else (f".{part}" if text else part)
    return text or "(top level)"


class _Locator:
    """Turns a key path into `file:line` or the `--set` flag that provided it."""

    def __init__(
        self, source: str, lines: dict[tuple[str, ...], int], overrides: dict[tuple[str, ...], str]
    ):
        self.source, self.lines, self.overrides = source, lines, overrides

    def __call__(self, path: tuple[str, ...]) -> str:
        for set_path, text in self.overrides.items():
            if path[: len(set_path)] == set_path or set_path[: len(path)] == path and path:
                return f"--set {text}"
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return f"{self.source}:{self.lines[path[:cut]]}"
        return self.source


def _refuse_huge_numbers(raw: Any, locate) -> None:
    """No whole number past 10**30 reaches the schema (pydantic would hand a 5,000-digit one to
    Python's int-to-text conversion, which refuses it with a ValueError)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(raw, ())]
    seen: set[int] = set()
    while stack:
        value, path = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            if value.bit_length() > 100:
                raise SpecError(
                    f"{_dotted(path)}: {short(value)} is far too large for any spec value",
                    where=locate(path),
                )
        elif isinstance(value, (dict, list, tuple)) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, int) and key.bit_length() > 100:
                    raise SpecError(
                        f"{_dotted(path)}: the key {short(key)} is far too large",
                        where=locate(path),
                    )
                stack.append((item, path + (str(key)[:40],)))


def validate_spec(
    raw: Any, *, source: str = "<spec>", lines=None, overrides=None, base_dir: Path | None = None
) -> Spec:
    """Validate a raw mapping into a Spec and check the network's shapes. With `base_dir` (the
    spec file's folder) custom activations are located: files made absolute, every one's code
    identity in `activation_code` (see elubench.activations.code). Without it, the spec's
    own `activation_code` is kept (a spec a worker or a results folder got)."""
    locate = _Locator(source, lines or {}, overrides or {})
    if not isinstance(raw, dict):
        raise SpecError(
            "a spec is a mapping with the sections name, data, model, train, compare", where=source
        )
    _refuse_huge_numbers(raw, locate)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            path = _clean_loc(error["loc"])
            messages.append(f"{locate(path)}: {_dotted(path)}: {_describe(error)}")
        head = (
            messages[0]
            if len(messages) == 1
            else f"{len(messages)} problems in the spec:\n  " + "\n  ".join(messages)
        )
        raise SpecError(head) from None
    model = raw.get("model")
    written = model.get("stacks") if isinstance(model, dict) else None
    if isinstance(written, str):  # one bracket string: "[1x8x3] [1x8x3, 1x16x3] [1x10x1]"
        try:
            parse_architecture(written)
        except ElubenchError as exc:
            path = ("model", "stacks")
            raise SpecError(
                f"{_dotted(path)}: {exc.message}", where=locate(path), hint=exc.hint
            ) from None
    for index, text in enumerate(spec.model.stacks):
        try:
            parse_stack(text)
        except ElubenchError as exc:
            path = ("model", "stacks", str(index))
            raise SpecError(
                f"{_dotted(path)}: {exc.message}", where=locate(path), hint=exc.hint
            ) from None
    from elubench.core.errors import LayoutError
    from elubench.spec.layout import net_layout

    for activation in spec.compare.parsed_activations()[:1]:
        try:
            net_layout(spec, activation, batchnorm=False)
        except LayoutError as exc:
            path = ("model", "stacks", str(exc.stack)) if exc.stack is not None else ("model",)
            raise SpecError(
                f"{_dotted(path)}: {exc.message}", where=locate(path), hint=exc.hint
            ) from None
    return spec if base_dir is None else _locate_activations(spec, base_dir, locate)


def _locate_activations(spec: Spec, base_dir: Path, locate) -> Spec:
    """The spec with its custom activations located (files absolute, code identities set);
    a file that cannot be read or a module that does not exist is named where the spec lists it."""
    from elubench.activations.code import locate as locate_code

    code: dict[str, str] = {}
    names: list[str] = []
    for index, text in enumerate(spec.compare.activations):
        path = ("compare", "activations", str(index))
        try:
            [name] = locate_code([text], base_dir, code)
        except ElubenchError as exc:
            raise SpecError(
                f"{_dotted(path)}: {exc.message}", where=locate(path), hint=exc.hint
            ) from None
        if name in names:
            raise SpecError(
                f"{_dotted(path)}: {text!r} is listed twice (as {name!r})", where=locate(path)
            )
        names.append(name)
    if not code and not spec.activation_code:
        return spec
    baseline = spec.compare.baseline
    if (
        baseline in spec.compare.activations
    ):  # a custom activation's reference: located the same way
        baseline = names[spec.compare.activations.index(baseline)]
    compare = spec.compare.model_copy(update={"activations": names, "baseline": baseline})
    return spec.model_copy(update={"compare": compare, "activation_code": code})


def load_spec(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), width: float | None = None
) -> Spec:
    """Read, override and validate a spec file. Raises SpecError with file, key path and line."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as handle:  # never more than the bound into memory
            data = handle.read(safeyaml.MAX_BYTES + 1)
        if len(data) > safeyaml.MAX_BYTES:
            raise SpecError(
                f"the file is larger than a spec may be ({safeyaml.MAX_BYTES // 1024} "
                "KiB; a real spec is a few KiB)",
                where=source,
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(
            "no such spec file",
            where=source,
            hint="the specs/ folder has one per paper experiment, e.g. specs/quickstart.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc.__class__.__name__}", where=source) from None
    raw, lines = _read_yaml(text, source)
    if raw is None:
        raise SpecError("the spec file is empty", where=source)
    set_paths: dict[tuple[str, ...], str] = {}
    if isinstance(raw, dict):
        for item in overrides:
            set_paths[apply_override(raw, item)] = item
        if width is not None:
            raw.setdefault("model", {})
            if isinstance(raw["model"], dict):
                raw["model"]["width"] = width
                set_paths[("model", "width")] = f"model.width={width} (from --width)"
    return validate_spec(raw, source=source, lines=lines, overrides=set_paths, base_dir=path.parent)


@contextmanager
def naming(path: Path | None):
    """A mistake found while handling `path` names the file (when it does not already)."""
    try:
        yield
    except ElubenchError as exc:
        if path is not None and str(path) not in exc.render():
            exc.where = f"{path} ({exc.where})" if exc.where else str(path)
            exc.args = (exc.render(),)
        raise


def unique_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The spec files in the order given, each once, and a note for each one given again."""
    seen: dict[Path, Path] = {}
    notes = []
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            same = "" if str(seen[key]) == str(path) else f" (as {seen[key]})"
            notes.append(f"{path} is given more than once{same}: trained once")
            continue
        seen[key] = Path(path)
    return list(seen.values()), notes
