"""Injecting a fault into the library's source, to show that a property catches it.

A ``Fault`` names a function (``module``, ``function``, ``Class.method`` allowed) and exact
pieces of its source to replace (``changes``: pairs of old and new text). ``inject``
recompiles the function with the changes in its module's namespace and monkeypatches it
in; ``apply_to_file`` makes the same changes in the file (for running a whole test suite
against the fault, by hand). Each text to replace must occur exactly once, so a fault that
no longer matches the code fails loudly instead of testing nothing. ``falsified`` runs a
hypothesis test and returns its failure, if any.

Used by tests/test_properties_bite.py for the backward walk; the same helper serves faults
in the cell compiler's code generator (a module and function there, one line changed).
"""

from __future__ import annotations

import importlib
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Fault:
    """Each ``(old, new)`` of ``changes`` made in ``module.function``'s source; ``why``
    says what a real bug of this kind would look like."""

    name: str
    module: str
    function: str
    changes: tuple[tuple[str, str], ...]
    why: str = ""

    def _target(self) -> tuple[object, str, Callable]:
        owner: object = importlib.import_module(self.module)
        *path, attribute = self.function.split(".")
        for part in path:
            owner = getattr(owner, part)
        return owner, attribute, inspect.unwrap(getattr(owner, attribute))

    def source(self) -> str:
        """The function's source with the fault in it."""
        _, _, fn = self._target()
        where = f"{self.module}.{self.function}"
        return self._changed(textwrap.dedent(inspect.getsource(fn)), where)

    def _changed(self, text: str, where: str) -> str:
        for old, new in self.changes:
            if text.count(old) != 1:
                raise AssertionError(
                    f"fault {self.name!r}: {old!r} occurs {text.count(old)} times in "
                    f"{where}, not once; update the fault to the code"
                )
            text = text.replace(old, new)
        return text

    def inject(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Replace the function by its faulty version for the rest of the test."""
        owner, attribute, fn = self._target()
        scope = dict(fn.__globals__)
        exec(compile(self.source(), inspect.getsourcefile(fn), "exec"), scope)
        faulty = scope[fn.__name__]
        if isinstance(inspect.getattr_static(owner, attribute), staticmethod):
            faulty = staticmethod(faulty)
        monkeypatch.setattr(owner, attribute, faulty)

    def apply_to_file(self) -> Callable[[], None]:
        """Write the fault into the module's file; returns the function that restores it."""
        _, _, fn = self._target()
        path = Path(inspect.getsourcefile(fn))
        original = path.read_text()
        self.source()  # the changes apply to the function itself
        path.write_text(self._changed(original, str(path)))
        return lambda: path.write_text(original)


def falsified(test: Callable[[], None]) -> str | None:
    """Run a hypothesis-decorated ``test``; its failure (any exception, as text), or None
    if it passed."""
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - a property fails by any exception
        return f"{type(exc).__name__}: {exc}"
    return None
