"""Activations from a user's code: where it is, which version of it, and the module it builds.

Three kinds of name point at code (activations.CustomRef):

    acts.py:isrlu(alpha=0.5)   an attribute of a Python file, relative to the spec's folder
    mypkg.acts:ISRLU           an attribute of an importable module
    isrlu                      a name a package registers in the entry-point group
                               `elubench.activations` (isrlu = "mypkg.acts:isrlu")

Two steps, so that reading a spec stays pure Python:

- `locate` (at spec load; no import of the user's code, no torch): a file's path becomes
  absolute and every target gets its code identity, the file's SHA-256 or the installed
  distribution's name and version (`Spec.activation_code`, which the spec hash covers);
- `resolve` (before anything trains; imports the code, and so torch): loads the object, checks
  its identity is still the one located, binds the parameters and returns an `Activation`
  whose `custom` definition builds the module. Resolved activations are kept per process, so a
  worker resolves each once. A file's source can travel to a worker that does not see the file
  (`ship` and `receive`: Ray); its SHA-256 is checked there against the spec's.

Binding the object's parameters and building its modules is elubench.activations.binding; the
checks a resolved activation passes before training are elubench.activations.checks.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import sys
import types
from pathlib import Path

from elubench.activations.binding import bind
from elubench.activations.names import (
    CustomRef,
    distribution,
    entry_point,
    parse_activation,
    registered,
)
from elubench.activations.registry import ALIASES, REGISTRY, Activation, format_value
from elubench.core.errors import ActivationError, ElubenchError

MAX_SOURCE_BYTES = 1 << 20  # an activation's file; far more than any activation needs


# --- code identity (at spec load) -------------------------------------------------------------


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_source(path: Path, text: str) -> bytes:
    """A file activation's bytes, or one message saying why they cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise ActivationError(
            f"{text!r}: no such file {path}",
            hint="a relative path is read from the spec's folder; or give an absolute path",
        ) from None
    except IsADirectoryError:
        raise ActivationError(f"{text!r}: {path} is a folder, not a Python file") from None
    except OSError as exc:
        raise ActivationError(
            f"{text!r}: cannot read {path} ({exc.strerror or exc})",
            hint="the file must be readable by the user who runs elubench",
        ) from None
    if len(data) > MAX_SOURCE_BYTES:
        raise ActivationError(
            f"{text!r}: {path} is larger than {MAX_SOURCE_BYTES // 1024} KiB; an "
            "activation's file is a few lines"
        )
    return data


def _distribution_identity(dist, module: str | None) -> str:
    """`name==version`; for an editable install (whose code changes without its version) also
    the SHA-256 of the module's file."""
    identity = f"{dist.metadata['Name']}=={dist.version}"
    try:
        editable = (
            json.loads(dist.read_text("direct_url.json") or "{}")
            .get("dir_info", {})
            .get("editable")
        )
    except ValueError:
        editable = False
    if editable and module:
        identity += " " + _module_file_identity(module)
    return identity


def _module_file_identity(module: str) -> str:
    try:
        found = importlib.util.find_spec(module)  # imports the parent packages, not the module
    except (ImportError, ValueError):
        found = None
    except Exception as exc:  # a parent package that fails to import: the user's to fix
        raise _import_failed(module.rpartition(".")[0], exc) from None
    if found is None:
        raise ActivationError(
            f"no module named {module!r}",
            hint="install the package that provides it, or check the spelling "
            "(a file is written file.py:attr)",
        )
    if not found.origin or not Path(found.origin).is_file():
        raise ActivationError(
            f"cannot tell which version of module {module!r} this is: it is "
            "neither in an installed distribution nor a file"
        )
    return _sha(Path(found.origin).read_bytes())


def _module_identity(module: str) -> str:
    top = module.split(".")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    if names:
        return _distribution_identity(importlib.metadata.distribution(names[0]), module)
    return _module_file_identity(module)


def identify(ref: CustomRef, base_dir: Path | None) -> tuple[CustomRef, str]:
    """The reference with a file's path made absolute (from `base_dir`), and its code identity."""
    if ref.kind == "registered":
        ep = entry_point(ref.target)
        return ref, _distribution_identity(
            ep.dist, ep.value.partition(":")[0]
        ) if ep.dist else _module_identity(ep.value.partition(":")[0])
    where, _, attr = ref.target.rpartition(":")
    if ref.kind == "module":
        return ref, _module_identity(where)
    path = Path(where).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = Path(_normal(path))
    return CustomRef(f"{path}:{attr}", ref.args), _sha(read_source(path, str(ref)))


def _normal(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return str(path.absolute())


def locate(names: list[str], base_dir: Path | None, code: dict[str, str]) -> list[str]:
    """`names` with every file made absolute; each custom target's identity added to `code`."""
    out = []
    for text in names:
        parsed = parse_activation(text)
        if isinstance(parsed, CustomRef):
            parsed, identity = identify(parsed, base_dir)
            code[parsed.target] = identity
        out.append(str(parsed))
    return out


# --- shipping a file's source to workers that do not see it -----------------------------------

_SOURCES: dict[str, bytes] = {}


def ship(spec) -> dict[str, bytes]:
    """The sources of the spec's file activations, by path (for WorkerPayload)."""
    files = {}
    for target, identity in spec.activation_code.items():
        where = target.rpartition(":")[0]
        if where.endswith(".py"):
            data = read_source(Path(where), target)
            if _sha(data) != identity:
                raise _changed(target, identity, _sha(data))
            files[where] = data
    return files


def receive(files: dict[str, bytes]) -> None:
    """Keep sources shipped with a worker's payload; `resolve` reads them instead of the disk."""
    _SOURCES.update(files)


def _changed(target: str, expected: str, now: str) -> ActivationError:
    return ActivationError(
        f"{target} changed since the spec was read ({expected[:19]}… is now {now[:19]}…)",
        hint="run again: results of the new code are a new version of the spec",
    )


# --- resolving: the object, its parameters, its module ------------------------------------------

_RESOLVED: dict[tuple[str, str], Activation] = {}
_MODULES: dict[str, types.ModuleType] = {}


def resolve(ref: Activation | CustomRef | str, spec) -> Activation:
    """The Activation a located reference names (see the module's docstring); cached."""
    ref = parse_activation(ref) if isinstance(ref, str) else ref
    if not isinstance(ref, CustomRef):
        return ref
    expected = spec.activation_code.get(ref.target)
    if expected is None:
        raise ActivationError(
            f"{ref}: the spec holds no code identity for it",
            hint="read the spec with elubench.spec.loader.load_spec, which finds "
            "the code an activation names",
        )
    key = (str(ref), expected)
    if key not in _RESOLVED:
        obj, qualified, default_label = _load(ref, expected)
        _RESOLVED[key] = bind(ref, obj, qualified, expected, default_label)
    return _RESOLVED[key]


def resolve_name(text: str, spec) -> Activation:
    """A built-in's Activation, or a located custom one resolved."""
    return resolve(parse_activation(text), spec)


def activation_for(cfg, spec) -> Activation:
    """The Activation a run of the matrix trains (grid.RunConfig)."""
    if cfg.activation_ref is None:
        builtin = parse_activation(cfg.activation)
        # a run without a reference trains a built-in: spec.matrix gives every custom one its
        # reference
        assert isinstance(builtin, Activation), cfg.activation
        return builtin
    activation = resolve(cfg.activation_ref, spec)
    if str(activation) != cfg.activation:
        raise ActivationError(
            f"{cfg.activation_ref} is labelled {activation}, not {cfg.activation}"
        )
    return activation


def _import_failed(what: str, exc: BaseException) -> ActivationError:
    return ActivationError(
        f"importing {what} raised {exc.__class__.__name__}: {exc}",
        hint="fix the error in that code (elubench imports it as Python does)",
    )


def _load(ref: CustomRef, expected: str):
    """(object, qualified name, label by default) of a reference; its identity checked."""
    if ref.kind == "registered":
        ep = entry_point(ref.target)
        where, _, attr = ep.value.partition(":")
        qualified = f"{ref.target} = {ep.value}"
        now = _distribution_identity(ep.dist, where) if ep.dist else _module_identity(where)
        module, default_label = _import_module(where, str(ref)), ref.target
    else:
        where, _, attr = ref.target.rpartition(":")
        qualified, default_label = ref.target, attr
        if ref.kind == "module":
            module = _import_module(where, str(ref))
            now = _module_identity(where)
        else:
            data = _source(where, str(ref), expected)
            now = _sha(data)
            if now == expected:
                module = _exec_file(where, data)
    if now != expected:
        raise _changed(qualified, expected, now)
    if not attr or not hasattr(module, attr):
        public = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and callable(v)
            and getattr(v, "__module__", None) == module.__name__
        ]
        raise ActivationError(
            f"{where} has no attribute {attr!r}",
            hint=f"it defines {', '.join(public[:12])}"
            if public
            else "define the activation there, as a function of a tensor or an nn.Module subclass",
        )
    return getattr(module, attr), qualified, default_label


def _source(path: str, text: str, expected: str) -> bytes:
    """A file activation's bytes: as shipped with the worker's payload when they are the code
    the spec names, else as read from the disk (a stale shipment never hides the file)."""
    shipped = _SOURCES.get(path)
    if shipped is not None and _sha(shipped) == expected:
        return shipped
    try:
        return read_source(Path(path), text)
    except ActivationError:
        if shipped is None:
            raise
        return shipped  # neither matches: the caller says the code changed


def _import_module(name: str, text: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ActivationError(
                f"{text!r}: no module named {exc.name!r}",
                hint="install it where elubench runs (with Ray or Slurm: on "
                "every node), or name a file: path/to/file.py:attr",
            ) from None
        raise _import_failed(name, exc) from None
    except Exception as exc:  # the user's code failing to import is the user's to fix
        raise _import_failed(name, exc) from None


def _exec_file(path: str, data: bytes) -> types.ModuleType:
    """The module a file's bytes define, under a name of its own (one per content), so two
    versions or two files of one name never collide. Executed from the bytes whose SHA-256 was
    checked, never read again."""
    name = f"elubench_custom_{hashlib.sha256(data).hexdigest()[:16]}"
    if name not in _MODULES:
        module = types.ModuleType(name)
        module.__file__ = path
        sys.modules[name] = module  # dataclasses and pickling look a class's module up here
        try:
            exec(compile(data, path, "exec"), module.__dict__)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise _import_failed(path, exc) from None
        _MODULES[name] = module
    return _MODULES[name]


def with_names(spec, names: list[str] | None, base_dir: Path, flag: str):
    """(spec, names) for activations named on the command line (`flag`): their files made
    absolute from the spec's folder, their code identities added to the spec's."""
    if not names:
        return spec, names
    code = dict(spec.activation_code)
    try:
        located = locate(names, base_dir, code)
    except ElubenchError as exc:
        raise ActivationError(exc.message, where=flag, hint=exc.hint) from None
    if code != spec.activation_code:
        spec = spec.model_copy(update={"activation_code": code})
    return spec, located


def registered_rows() -> list[dict[str, str | bool]]:
    """Registered activations as `elubench activations` lists them, each loaded to show its
    parameters; one that does not load, or that a built-in's name hides, says so in its row."""
    rows = []
    for name, eps in sorted(registered().items()):
        row: dict[str, str | bool] = {
            "name": name,
            "registered": True,
            "formula": "",
            "parameters": "",
            "he_aware_slope": "-",
            "aliases": "",
            "implemented_by": " and ".join(distribution(ep) for ep in eps),
            "source": " and ".join(ep.value for ep in eps),
        }
        builtin = ALIASES.get(name.lower(), name.lower())
        if builtin in REGISTRY:
            row["formula"] = f"not usable: the built-in {builtin} has this name"
        else:
            try:
                ref, identity = identify(CustomRef(name), None)
                activation = resolve(ref, types.SimpleNamespace(activation_code={name: identity}))
                definition = activation.definition
                slope = activation.negative_slope
                row.update(
                    formula=definition.formula,
                    he_aware_slope="-" if slope is None else format_value(slope),
                    parameters=", ".join(
                        f"{p.name}={format_value(p.default)}" for p in definition.params
                    ),
                )
                if " sha256:" in identity:
                    row["source"] = f"{row['source']} ({_module_file(ref)})"
            except ElubenchError as exc:
                row["formula"] = f"cannot load: {exc.message}"
        rows.append(row)
    return rows


def _module_file(ref: CustomRef) -> str | None:
    found = importlib.util.find_spec(entry_point(ref.target).value.partition(":")[0])
    return found.origin if found is not None else "?"
