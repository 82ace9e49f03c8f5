"""The BPTT ledger as a record: a backward pass step by step, the summed weight gradients from
three sources, how far they disagree, and what a disagreement points at. ``explain.py``
builds it; ``commands/explain.py`` prints it. Tooling layer.

Two sources disagree on a weight by ``max|a - b| / max(|a|, |b|)`` over its elements. A
gradient holding NaN or inf cannot be checked, so it disagrees with everything (``inf``),
whatever the other sources hold: a NaN scale would otherwise make the ratio look like 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bptt_derivations import HandStep

__all__ = ["SOURCES", "TOLERANCE", "Ledger", "strict_json"]

SOURCES = ("ledger", "autograd", "central differences")
# Fourth-order central differences in float64 (eps 5e-4) agree with autograd to about 1e-11
# relative on these small models; 1e-9 leaves a margin and still catches any wrong term.
TOLERANCE = 1e-9


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.inf
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else 0.0


def strict_json(value: Any) -> Any:
    """``value`` (dicts, lists, tuples, floats) with every NaN and ±inf replaced by None, so
    ``json.dumps(..., allow_nan=False)`` writes strict JSON (``null``), which every parser
    reads."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Ledger:
    """A backward pass, step by step (``steps`` from t = T-1 down to 0), and the summed
    gradients from the three ``SOURCES`` (``grads[source][param]``).

    ``from_graph``: the ledger was read off the recorded graph, the same graph autograd walks,
    so "ledger vs autograd" holds by construction and only central differences check them.
    ``wrong_ops``: when autograd disagrees with central differences, the ops of the recorded
    step whose own gradient check (``testing.check_op``) fails."""

    title: str
    derivation: str
    path: tuple[str, str] | None
    steps: list[HandStep]
    running: list[dict[str, np.ndarray]]
    grads: dict[str, dict[str, np.ndarray]]
    loss: float
    from_graph: bool = False
    wrong_ops: list[str] = field(default_factory=list)
    disagreements: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pairs = [(a, b) for i, a in enumerate(SOURCES) for b in SOURCES[i + 1 :]]
        self.disagreements = {
            f"{a} vs {b}": {
                name: _relative(self.grads[a][name], self.grads[b][name]) for name in self.grads[a]
            }
            for a, b in pairs
        }

    @property
    def worst(self) -> float:
        """The largest relative disagreement between any two sources, over all weights."""
        return max(max(per.values()) for per in self.disagreements.values())

    @property
    def non_finite(self) -> dict[str, list[str]]:
        """``{source: [weights whose summed gradient holds NaN or inf]}``, sources with none
        left out."""
        found = {
            source: [n for n, g in grads.items() if not np.all(np.isfinite(g))]
            for source, grads in self.grads.items()
        }
        return {source: names for source, names in found.items() if names}

    def agrees(self, tolerance: float = TOLERANCE) -> bool:
        return self.worst <= tolerance

    def verdict(self, tolerance: float = TOLERANCE) -> str:
        """What the comparison says, in one phrase."""
        if self.agrees(tolerance):
            return "the three agree"
        bad = self.non_finite
        if bad:
            listed = "; ".join(f"{s} ({', '.join(names)})" for s, names in bad.items())
            finite = [s for s in SOURCES if s not in bad]
            also = f"; {' and '.join(finite)} finite" if finite else ""
            head = f"DISAGREE: not finite in {listed}{also}"
        else:
            head = "DISAGREE"
        worst_autograd = max(self.disagreements["autograd vs central differences"].values())
        if "central differences" in bad and "autograd" not in bad:
            return f"{head}: the loss is not finite near these weights"
        if worst_autograd > tolerance:
            if self.wrong_ops:
                return f"{head}: the backward of op {', '.join(map(repr, self.wrong_ops))} is wrong"
            return f"{head}: autograd is wrong, though every op of the step passes its own check"
        return f"{head}: the derivation is wrong"

    def __str__(self) -> str:
        """The tables ``tinygrad-lstm explain`` prints."""
        from .commands.explain import format_ledger  # the command's module imports this one

        return format_ledger(self)

    def to_dict(self) -> dict:
        """Everything, as strict-JSON-able lists (``json.dumps(ledger.to_dict())``): a NaN or
        inf anywhere (a gradient, a disagreement, ``worst``) is written as None (``null``), and
        ``non_finite`` names the sources and weights that held one."""

        def arrays(d: dict) -> dict:
            return {k: np.asarray(v).tolist() for k, v in d.items()}

        return strict_json(
            {
                "title": self.title,
                "derivation": self.derivation,
                "loss": self.loss,
                "path": self.path,
                "steps": [
                    {
                        "t": s.t,
                        "arriving": arrays(s.arriving),
                        "local": arrays(s.local),
                        "path": s.path,
                        "contribution": arrays(s.contributions),
                        "running_sum": arrays(r),
                    }
                    for s, r in zip(self.steps, self.running)
                ],
                "grads": {src: arrays(g) for src, g in self.grads.items()},
                "disagreements": self.disagreements,
                "worst": self.worst,
                "non_finite": self.non_finite,
                "from_graph": self.from_graph,
                "wrong_ops": self.wrong_ops,
                "verdict": self.verdict(),
            }
        )
