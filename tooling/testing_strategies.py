"""Hypothesis strategies that draw an op's inputs from its registration metadata.

Shapes (``shapes``, ``broadcastable_shapes``, or the op's own ``shapes``), attribute choices
(``op_attrs``) and values (``op_values``): distinct points of a grid inside the op's domain,
away from the points it avoids, at a magnitude scale drawn from ``scales(info)``.
``op_cases`` puts them together for one call of the op. Used by ``tinygrad_lstm.tooling.testing``.
``drawn_examples`` lists what a strategy draws (to look at, or to measure a strategy by).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike

from tinygrad_lstm.registry import OpInfo

__all__ = [
    "GRID_POINTS",
    "drawn_examples",
    "SCALES",
    "SPAN",
    "broadcastable_shapes",
    "op_attrs",
    "op_cases",
    "op_values",
    "scales",
    "shapes",
    "value_grid",
]

# Inputs are drawn at one of SCALES, log-uniformly: the core grid (unbounded ends at
# [-SPAN, SPAN], as small values are where most bugs show and where shrinking goes), then
# magnitudes in [SPAN * s / 10, SPAN * s] for the larger scales s, up to 300, with the ends
# of a bounded domain included: a backward wrong only for large |x| or near a domain edge
# fails. Beyond ~1e2-1e3 float64 central differences (eps 1e-6) stop resolving a small
# derivative next to large outputs at these tolerances, so the range stops there (at 30 for
# linalg ops, whose outputs are sums of products); whole recurrent layers (kind "fused")
# stay at the core scale, since their pre-activations, which the input metadata does not
# describe, would reach their kinks (relu) and saturate.
SPAN = 3.0
SCALES = (1.0, 10.0, 100.0)
GRID_POINTS = 512


def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes with ``min_dims..max_dims`` axes of length ``1..max_side``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcastable_shapes(
    num_shapes: int, max_dims: int = 3, max_side: int = 4
) -> st.SearchStrategy:
    """Tuples of ``num_shapes`` shapes that broadcast together (NumPy rules)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda s: s.input_shapes)


def scales(info: OpInfo) -> tuple[float, ...]:
    """The magnitude scales inputs of ``info`` are drawn at (see ``SCALES``)."""
    if info.kind == "fused":
        return SCALES[:1]
    # A matmul output sums products of two inputs: at 300 x 300 a small derivative next to
    # it drowns in the rounding of the large output (measured: seed 5 failed at 2.9e-8).
    return SCALES[:2] if info.kind == "linalg" else SCALES


def value_grid(info: OpInfo, i: int, scale: float = 1.0) -> np.ndarray:
    """Candidate values for input ``i`` of an op at ``scale``, smallest magnitude first.

    ``scale`` 1: ``GRID_POINTS`` evenly spaced points inside the declared open domain (each
    finite end pulled in by ``margin``; an open end extends ``2 * SPAN`` from the other;
    ``[-SPAN, SPAN]`` when both are open). A larger ``scale``: log-spaced magnitudes in
    ``[SPAN * scale / 10, SPAN * scale]`` of either sign, inside the domain, plus the
    domain's (margin-adjusted) ends that fall in that band. Points closer than ``margin``
    to one of ``info.avoid`` are dropped. Drawing distinct grid points keeps every two
    elements of an array apart, so reductions such as max never meet a tie, where they
    are not differentiable.
    """
    return _grid(*info.input_domain(i), info.margin, tuple(info.avoid), scale)[0]


@functools.lru_cache(maxsize=1024)
def _grid(
    low: float, high: float, margin: float, avoid: tuple[float, ...], scale: float = 1.0
) -> tuple[np.ndarray, st.SearchStrategy | None]:
    low = low + margin if math.isfinite(low) else None
    high = high - margin if math.isfinite(high) else None
    if scale == 1.0:
        if low is None and high is None:
            low, high = -SPAN, SPAN
        elif low is None:
            low = high - 2 * SPAN
        elif high is None:
            high = low + 2 * SPAN
        grid = np.linspace(low, high, GRID_POINTS)
    else:
        band = np.geomspace(SPAN * scale / 10, SPAN * scale, GRID_POINTS // 2)
        ends = [e for e in (low, high) if e is not None and band[0] <= abs(e) <= band[-1]]
        grid = np.unique(np.concatenate([-band, band, ends]))
        grid = grid[
            (grid >= (-math.inf if low is None else low))
            & (grid <= (math.inf if high is None else high))
        ]
    for point in avoid:
        grid = grid[np.abs(grid - point) >= margin]
    grid = grid[np.argsort(np.abs(grid), kind="stable")]
    grid.flags.writeable = False
    # Built once per grid: hypothesis draws are much slower with a fresh strategy each time.
    return grid, (st.sampled_from(grid.tolist()) if len(grid) else None)


def op_values(
    info: OpInfo, i: int, shape: tuple[int, ...], dtype: DTypeLike = np.float64
) -> st.SearchStrategy:
    """Arrays of ``shape`` for input ``i``: distinct points of ``value_grid(info, i, s)``,
    at a scale ``s`` drawn from ``scales(info)`` (those whose grid has enough points)."""
    key = (*info.input_domain(i), info.margin, tuple(info.avoid))
    size = math.prod(shape)
    core = _grid(*key, 1.0)[0]
    if size > len(core):
        raise ValueError(
            f"{info.name}: shape {shape} has more elements than the "
            f"{len(core)} distinct values available for input {i}"
        )
    usable = [s for s in scales(info) if len(_grid(*key, s)[0]) >= max(size, 1)]
    return st.sampled_from(usable).flatmap(
        lambda s: hnp.arrays(dtype, shape, elements=_grid(*key, s)[1], unique=True)
    )


def op_attrs(info: OpInfo) -> st.SearchStrategy:
    """Dicts with one of the declared choices for every attribute of the op."""
    return st.fixed_dictionaries({k: st.sampled_from(list(v)) for k, v in info.attrs.items()})


@st.composite
def op_cases(draw: st.DrawFn, info: OpInfo) -> tuple[dict, list[np.ndarray]]:
    """``(attrs, float64 input arrays)`` for one call of the op.

    Ops without ``shapes`` (elementwise) get mutually broadcastable shapes, one per input;
    the others get ``info.shapes(dims, attrs)`` for six small ints ``dims`` in 1..3.
    """
    attrs = draw(op_attrs(info))
    if info.shapes is None:
        n_inputs = info.arity if info.arity is not None else info.n_inputs
        in_shapes = draw(broadcastable_shapes(n_inputs))
    else:
        dims = draw(st.lists(st.integers(1, 3), min_size=6, max_size=6))
        in_shapes = [tuple(s) for s in info.shapes(dims, attrs)]
    return attrs, [draw(op_values(info, i, s)) for i, s in enumerate(in_shapes)]


def drawn_examples(strategy: st.SearchStrategy, n: int) -> list:
    """The first ``n`` examples ``strategy`` generates, the same ones every time
    (derandomized)."""
    drawn: list = []

    @settings(
        max_examples=n,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: object) -> None:
        drawn.append(example)

    collect()
    return drawn
