"""The plugin registry: ops and recurrent cells by name, and entry-point discovery.

The engine never imports an op or a layer. It asks this registry for one by name at call
time, and the registry is filled by plugins: modules named under the entry-point group
``tinygrad_lstm.plugins``. The built-in ``tinygrad_lstm.ops`` and ``tinygrad_lstm.layers``
are found and loaded through that same group, exactly like a third party's package.

The records kept for each op and cell (``OpInfo``, ``CellInfo``, ``ScalarRule``) and
``RegistryError`` are defined in ``registry_records.py`` and importable from here as well.
"""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .registry_records import (
    OP_KINDS,
    CellInfo,
    OpInfo,
    OpKind,
    RegistryError,
    ScalarRule,
)

if TYPE_CHECKING:  # the engine sits above the registry: its classes are only named here
    from .autograd import Function
    from .module import Module

__all__ = [
    "ENTRY_POINT_GROUP",
    "CellInfo",
    "OpInfo",
    "PluginWarning",
    "RegistryError",
    "ScalarRule",
    "cell",
    "cell_info",
    "list_cells",
    "list_ops",
    "load_plugins",
    "op",
    "op_info",
    "register_cell",
    "register_op",
]

ENTRY_POINT_GROUP = "tinygrad_lstm.plugins"

# name -> Function subclass; read on every op call, so it is a plain dict.
OPS: dict[str, type[Function]] = {}
_OP_INFO: dict[str, OpInfo] = {}
_CELLS: dict[str, CellInfo] = {}
# How to make a cell or op that a script registers visible, for "unknown name" messages.
UNKNOWN_NAME_HINT = (
    "A cell or op registered in a script is visible to the command line "
    "with --import path/to/script.py (or a module name), and everywhere once "
    "installed as a plugin package (docs/plugins.md)"
)
# What the decorators return: the very class they were given.
_FunctionT = TypeVar("_FunctionT", bound="Function")
_ModuleT = TypeVar("_ModuleT", bound="Module")
# Which plugin is being imported right now, so registrations can say where they came from.
_loading: list[str] = []


class PluginWarning(UserWarning):
    """A plugin failed to load; the rest of the registry keeps working."""


def _origin(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{_loading[-1]}: {module}" if _loading else module


def _first_doc_line(obj: Any) -> str:
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def register_op(
    name: str,
    *,
    arity: int | None,
    kind: OpKind = "elementwise",
    domain: tuple = (-math.inf, math.inf),
    avoid: Sequence[float] = (),
    margin: float = 1e-2,
    attrs: dict[str, list] | None = None,
    shapes: Callable | None = None,
    n_inputs: int | None = None,
    differentiable: bool = True,
    scalar: dict[str, str | None] | None = None,
    replace: bool = False,
) -> Callable[[type[_FunctionT]], type[_FunctionT]]:
    """Class decorator: register a ``Function`` subclass as the op ``name``.

    ``scalar`` declares an elementwise op's per-element math (see ``ScalarRule``).

    Registering a name that exists raises ``RegistryError`` unless ``replace=True``.
    """
    if kind not in OP_KINDS:
        raise RegistryError(f"register_op({name!r}): kind must be one of {OP_KINDS}, got {kind!r}")
    if arity is None and n_inputs is None:
        raise RegistryError(f"register_op({name!r}): a variadic op (arity=None) needs n_inputs=")
    if kind != "elementwise" and shapes is None and differentiable:
        raise RegistryError(
            f"register_op({name!r}): a {kind} op needs shapes= so tests can generate inputs for it"
        )
    if scalar is not None and kind != "elementwise":
        raise RegistryError(f"register_op({name!r}): scalar= is for elementwise ops, not {kind}")
    rule = None if scalar is None else ScalarRule.parse(name, scalar, arity, list(attrs or {}))

    def decorate(fn: type[_FunctionT]) -> type[_FunctionT]:
        if not (hasattr(fn, "forward") and hasattr(fn, "apply")):
            raise RegistryError(f"register_op({name!r}): {fn!r} is not a Function subclass")
        if name in OPS and not replace:
            raise RegistryError(
                f"op {name!r} is already registered by {_OP_INFO[name].origin}; "
                "pass replace=True to override it"
            )
        if differentiable and getattr(fn.backward, "abstract", False):
            raise RegistryError(
                f"register_op({name!r}): {fn.__name__} defines no backward(); "
                "define it or register with differentiable=False"
            )
        if name in OPS and _loading:
            warnings.warn(
                f"tinygrad_lstm plugin {_loading[-1]} replaces op {name!r} registered "
                f"by {_OP_INFO[name].origin}",
                PluginWarning,
                stacklevel=2,
            )
        fn.op_name = name
        _OP_INFO[name] = OpInfo(
            name=name,
            fn=fn,
            arity=arity,
            kind=kind,
            domain=tuple(domain),
            avoid=tuple(avoid),
            margin=margin,
            attrs=dict(attrs or {}),
            shapes=shapes,
            n_inputs=n_inputs,
            differentiable=differentiable,
            scalar=rule,
            origin=_origin(fn),
            doc=_first_doc_line(fn),
        )
        OPS[name] = fn
        return fn

    return decorate


def register_cell(
    name: str, *, replace: bool = False
) -> Callable[[type[_ModuleT]], type[_ModuleT]]:
    """Class decorator: register a recurrent cell class under ``name``.

    A cell is a ``Module`` with ``init_state(batch_size, dtype)`` and
    ``forward(x_t, state) -> (output_t, new_state)``; ``Recurrent(name, ...)`` runs it.
    """

    def decorate(cls: type[_ModuleT]) -> type[_ModuleT]:
        for method in ("forward", "init_state"):
            if not callable(getattr(cls, method, None)):
                raise RegistryError(f"register_cell({name!r}): {cls.__name__} has no {method}()")
        if name in _CELLS and not replace:
            raise RegistryError(
                f"cell {name!r} is already registered by {_CELLS[name].origin}; "
                "pass replace=True to override it"
            )
        cls.cell_name = name
        _CELLS[name] = CellInfo(name=name, cls=cls, origin=_origin(cls), doc=_first_doc_line(cls))
        return cls

    return decorate


def op(name: str) -> type[Function]:
    """The ``Function`` subclass registered as ``name``."""
    try:
        return OPS[name]
    except KeyError:
        raise RegistryError(
            f"unknown op {name!r}; registered ops: {', '.join(sorted(OPS))}. {UNKNOWN_NAME_HINT}"
        ) from None


def op_info(name: str) -> OpInfo:
    """The registration metadata of op ``name``."""
    op(name)
    return _OP_INFO[name]


def list_ops() -> list[OpInfo]:
    """Every registered op's metadata, sorted by name."""
    return [_OP_INFO[k] for k in sorted(_OP_INFO)]


def cell(name: str) -> type[Module]:
    """The cell class registered as ``name``."""
    return cell_info(name).cls


def cell_info(name: str) -> CellInfo:
    """The registration record of cell ``name``."""
    try:
        return _CELLS[name]
    except KeyError:
        known = ", ".join(sorted(_CELLS)) or "none"
        raise RegistryError(
            f"unknown cell {name!r}; registered cells: {known}. {UNKNOWN_NAME_HINT}"
        ) from None


def list_cells() -> list[CellInfo]:
    """Every registered cell, sorted by name."""
    return [_CELLS[k] for k in sorted(_CELLS)]


_BUILTIN_DIST = "tinygrad-lstm"
_BUILTIN_ORDER = ("ops", "layers")
_loaded: set[tuple[str, str]] = set()


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)

    def dist_name(ep: importlib.metadata.EntryPoint) -> str:
        dist = getattr(ep, "dist", None)
        return dist.name if dist is not None else ""

    builtin = [ep for ep in eps if dist_name(ep) == _BUILTIN_DIST]
    others = [ep for ep in eps if dist_name(ep) != _BUILTIN_DIST]
    builtin.sort(key=lambda ep: _BUILTIN_ORDER.index(ep.name) if ep.name in _BUILTIN_ORDER else 99)
    others.sort(key=lambda ep: (dist_name(ep), ep.name))
    return builtin + others


def load_plugins() -> list[str]:
    """Import every plugin declared under the ``tinygrad_lstm.plugins`` entry-point group.

    Built-in plugins load first. A plugin that fails to import (any exception but
    ``KeyboardInterrupt``, ``SystemExit`` included), registers a name that is taken, or
    registers with missing or unusable metadata produces a ``PluginWarning`` naming the
    distribution and the entry point; whatever it registered before failing is removed, and
    the others still load. Returns the labels of the plugins loaded by this call.
    """
    loaded = []
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        label = f"{dist.name if dist is not None else '?'}:{ep.name}"
        key = (label, ep.value)
        if key in _loaded:
            continue
        _loaded.add(key)
        _loading.append(label)
        before = (dict(OPS), dict(_OP_INFO), dict(_CELLS))
        try:
            ep.load()
        # BaseException: a plugin running argparse at import raises SystemExit, and a broken
        # plugin must not take the library down; only Ctrl-C goes through (after the undo).
        except BaseException as exc:
            # Undo what it registered before failing: half a plugin is worse than none.
            for table, saved in zip((OPS, _OP_INFO, _CELLS), before):
                table.clear()
                table.update(saved)
            if isinstance(exc, KeyboardInterrupt):
                _loaded.discard(key)  # not loaded: a later call may try again
                raise
            warnings.warn(
                f"tinygrad_lstm plugin {label} (entry point {ep.name} = {ep.value}) "
                f"failed to load: {type(exc).__name__}: {exc}",
                PluginWarning,
                stacklevel=2,
            )
        else:
            loaded.append(label)
        finally:
            _loading.pop()
    return loaded
