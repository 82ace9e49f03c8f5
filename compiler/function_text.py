"""The text of one generated Numba function: its arguments, the rows it takes of them, its
body, and the sizes and constants it names.

A kernel reads a (T, B, W) array through its row at step t and batch row b (``v5_t =
v5[t, b]``, made once per b), and a loop over columns reads column ``j + n1`` of a row
(``v5_t[j + n1]``). Sizes are read from ``dims`` by name as unsigned integers (``n1 =
np.uint64(dims[1])``), so ``j`` (in ``range(n0)``) and every index are unsigned: Numba adds
no negative-index wraparound to them, and LLVM vectorizes the loops. (A signed ``j + n1``
keeps the wraparound branch in every access and the loop scalar; a view per column range,
``v5_t[n1:n2]``, costs a few nanoseconds to make for every row.) Programs that differ only
in their sizes share one module.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import DTypeLike

from .memory import Arg, Layout, Space

__all__ = ["Constants", "FunctionText", "Sizes"]


class Constants:
    """Module-level constants of the kernel dtype (Numba freezes them, typed: a bare ``1``
    would turn float32 arithmetic into float64)."""

    def __init__(self, dtype: DTypeLike) -> None:
        self.dtype, self.names = np.dtype(dtype), {}
        self.zero = self.name(0.0)

    def name(self, value: float) -> str:
        key = float(value)
        if key not in self.names:
            self.names[key] = f"_c{len(self.names)}"
        return self.names[key]

    def lines(self) -> list[str]:
        out = []
        for value, name in self.names.items():
            text = repr(value)
            if math.isinf(value) or math.isnan(value):
                text = {"inf": "np.inf", "-inf": "-np.inf"}.get(text, "np.nan")
            out.append(f"{name} = np.{self.dtype.name}({text})")
        return out


class Sizes:
    """The sizes the module's text names (``n0``, ``n1``...), in the order first named:
    ``dims`` holds their values."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    def name(self, value: int) -> str:
        if value not in self.names:
            self.names[value] = f"n{len(self.names)}"
        return self.names[value]

    def values(self) -> list[int]:
        return list(self.names)


class FunctionText:
    """One generated function ``name(t, tp, B, dims, *args)``: call ``ref`` for every
    element it reads or writes, add lines to ``body`` (inside ``for b``) and ``scratch``
    (before it), then ``text()``."""

    def __init__(self, name: str, layout: Layout, sizes: Sizes) -> None:
        self.name, self.layout, self.sizes = name, layout, sizes
        self.args: list[Arg] = []
        self.fixed_views: dict[str, str] = {}  # made once per call
        self.row_views: dict[str, str] = {}  # made once per batch row b
        self.scratch: list[str] = []
        self.body: list[str] = []
        self.used_sizes: set[str] = set()

    def size(self, value: int) -> str:
        name = self.sizes.name(value)
        self.used_sizes.add(name)
        return name

    def row(self, arg: Arg, at: str | None) -> str:
        """The name of ``arg``'s row for batch row b (at step ``at`` for a per-step array);
        a FIXED array is its own row."""
        if arg not in self.args:
            self.args.append(arg)
        space = self.layout.space(arg)
        if space is Space.FIXED:
            return arg.name
        if space is Space.ROWS:
            name, view = f"{arg.name}_b", f"{arg.name}[b]"
        else:
            name, view = f"{arg.name}_{at}", f"{arg.name}[{at}, b]"
        self.row_views.setdefault(name, view)
        return name

    def ref(
        self, arg: Arg, at: str | None, offset: int, width: int, fixed: bool, write: bool = False
    ) -> str:
        """The element of ``arg`` at column ``j + offset`` of a loop ``width`` wide (at
        column ``offset`` when ``fixed``). A read indexes the row (``row[j + n1]``); a
        ``write`` goes through a view of the columns written (``row_n1n2[j]``): a loop that
        stores at several offsets of one row does not vectorize, one that stores into
        several views does."""
        row = self.row(arg, at)
        if fixed:
            return f"{row}[{self.size(offset) if offset else 0}]"
        if not write or (offset == 0 and width == self.layout.width(arg)):
            return f"{row}[j + {self.size(offset)}]" if offset else f"{row}[j]"
        start = self.size(offset) if offset else ""
        stop = self.size(offset + width)
        view = f"{row}_{start or 0}{stop}"
        views = self.fixed_views if self.layout.space(arg) is Space.FIXED else self.row_views
        views.setdefault(view, f"{row}[{start}:{stop}]")
        return f"{view}[j]"

    def text(self) -> str:
        names = ", ".join(a.name for a in self.args)
        sizes = [f"    {n} = np.uint64(dims[{k}])" for k, n in enumerate(self.sizes.names.values())]
        return "\n".join(
            [
                "@numba.njit(cache=True, error_model='numpy', inline='always')",
                f"def {self.name}(t, tp, B, dims, {names}):",
                *(line for line in sizes if line.split()[0] in self.used_sizes),
                *(f"    {name} = {view}" for name, view in self.fixed_views.items()),
                *self.scratch,
                "    for b in range(B):",
                *(f"        {name} = {view}" for name, view in self.row_views.items()),
                *self.body,
            ]
        )
