"""The engine's recording hook: what a tracer (the cell compiler's capture) sees of a run.

Inside ``with recording(recorder):`` every op that ``Function.apply`` runs is reported to
``recorder.op(fn, inputs, attrs, outputs)`` after it ran (its inputs as Tensors, Python
numbers already made constants), and every read of a tensor's *values* from Python
(``.data``, ``.numpy()``, ``.item()``, ``.tolist()``, ``bool()``, ``float()``, ``int()``, a
comparison, a tensor used as an index) to ``recorder.value_read(tensor, how)``, which may
raise to stop the run. Shapes and dtypes are not values: reading them is not reported.

The hook is one module global that ``apply`` and the readers test: with no recorder (the
normal case) the cost is that test. Recordings do not nest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .autograd import Function
    from .tensor import Tensor

__all__ = ["Recorder", "active", "recording"]


class Recorder(Protocol):
    """What ``recording`` reports to."""

    def op(
        self, fn: type[Function], inputs: tuple[Tensor, ...], attrs: dict[str, Any], out: Any
    ) -> None:
        """Op ``fn`` ran on ``inputs`` with ``attrs`` and made ``out`` (a Tensor or a tuple)."""

    def value_read(self, tensor: Tensor, how: str) -> None:
        """Python code read ``tensor``'s values (``how``: ``".data"``, ``"bool()"``, ...)."""


_active: Recorder | None = None


def active() -> Recorder | None:
    """The recorder of the recording in progress, or None."""
    return _active


@contextlib.contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """Report every op run and every value read inside the block to ``recorder``."""
    global _active
    if _active is not None:
        raise RuntimeError("recording: a recording is already in progress (they do not nest)")
    _active = recorder
    try:
        yield recorder
    finally:
        _active = None


def note_value_read(tensor: Tensor, how: str) -> None:
    """Tell the active recorder, if any, that ``tensor``'s values were read as ``how``."""
    if _active is not None:
        _active.value_read(tensor, how)
