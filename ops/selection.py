"""Elementwise selection: abs, maximum, minimum, where, clip.

Each output element is one of its inputs (or a bound), so each gradient is the upstream
gradient routed to whichever input was picked. Where the pick is a tie PyTorch's convention
holds: abs'(0) = 0, a tie of maximum/minimum gives each side half, clip passes the gradient
at its bounds. Cells such as IndRNN, JANET or hard-gated variants reach for these.
Each runs its ``scalar=`` rule (``RuleFunction``, ops/rule_function.py). Their function
forms are ``tg.abs``, ``tg.where`` and the like (tinygrad_lstm.functional).
"""

from __future__ import annotations

import math

from tinygrad_lstm import register_op

from .rule_function import RuleFunction


@register_op(
    "abs",
    arity=1,
    avoid=(0.0,),
    scalar={"y": "abs(x)", "dx": "g if x > 0 else (-g if x < 0 else 0 * g)"},
)
class Abs(RuleFunction):
    """y = |x|;  dx = g * sign(x) (0 * g at x = 0 and at NaN, as in PyTorch)."""


@register_op(
    "maximum",
    arity=2,
    scalar={
        "y": "a if a >= b or a != a else b",
        "da": "g / 2 if a == b else (0 if a < b else g)",
        "db": "g / 2 if a == b else (0 if a > b else g)",
    },
)
class Maximum(RuleFunction):
    """y = max(a, b) elementwise, broadcasting (NaN if either is NaN; a at a tie);
    da = g where a > b, g / 2 where a == b, else 0;  db likewise."""


@register_op(
    "minimum",
    arity=2,
    scalar={
        "y": "a if a <= b or a != a else b",
        "da": "g / 2 if a == b else (0 if a > b else g)",
        "db": "g / 2 if a == b else (0 if a < b else g)",
    },
)
class Minimum(RuleFunction):
    """y = min(a, b) elementwise, broadcasting (NaN if either is NaN; a at a tie);
    da = g where a < b, g / 2 where a == b, else 0;  db likewise."""


@register_op(
    "where",
    arity=3,
    scalar={
        "y": "a if mask != 0 else b",
        "dmask": None,
        "da": "g if mask != 0 else 0",
        "db": "0 if mask != 0 else g",
    },
)
class Where(RuleFunction):
    """y = a where mask else b, broadcasting all three; mask is bool or float (nonzero is
    true) and a constant: da = g where mask else 0,  db = g where not mask else 0.

    A float mask that requires grad gets zeros: y does not change when it moves a little."""


# The bounds the generic property tests try; ``avoid`` keeps their inputs off the finite ones.
_CLIP_ATTRS = {"min": [-1.0, -math.inf], "max": [0.5, math.inf]}


@register_op(
    "clip",
    arity=1,
    attrs=_CLIP_ATTRS,
    avoid=(-1.0, 0.5),
    scalar={
        "y": "x if x != x else (max if x > max or min > max else (min if x < min else x))",
        "dx": "g if x >= min and x <= max else 0",
    },
)
class Clip(RuleFunction):
    """y = min(max(x, min), max) (all ``max`` when min > max; NaN stays NaN), PyTorch's clamp;
    dx = g where min <= x <= max (bounds included), else 0.

    ``min`` or ``max`` None (or -inf / inf) leaves that side open."""

    @staticmethod
    def attributes(min=-math.inf, max=math.inf):
        if min is None and max is None:
            raise TypeError("clip: needs min or max (both are None)")
        return {"min": -math.inf if min is None else min, "max": math.inf if max is None else max}
