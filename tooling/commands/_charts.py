"""Log-scale line charts of per-step gradient norms for ``tinygrad-lstm bptt``: a PNG through
matplotlib when it is installed, text for a terminal otherwise."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# One (title, {label: y values}) per panel; y[k] is the value at distance k from the loss.
Panels = Sequence[tuple[str, dict[str, np.ndarray]]]


def plot_png(
    path: str,
    panels: Panels,
    ylabel: str | Sequence[str],
    suptitle: str,
    xlabels: Sequence[str] | None = None,
) -> bool:
    """Draw the panels side by side, log y axis, into ``path``; False without matplotlib.
    ``ylabel`` is shared (one y axis) or one per panel; ``xlabels`` one per panel (default:
    distance from the loss)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shared = isinstance(ylabel, str)
    ylabels = [ylabel] * len(panels) if shared else list(ylabel)
    xlabels = list(xlabels or ["distance from the loss (time steps)"] * len(panels))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=shared, squeeze=False
    )
    for k, (ax, (title, curves)) in enumerate(zip(axes[0], panels)):
        for label, y in curves.items():
            distance = np.arange(len(y))
            keep = np.isfinite(y) & (y > 0)
            ax.semilogy(distance[keep], y[keep], label=label, lw=1.6)
        ax.set(title=title, xlabel=xlabels[k])
        ax.grid(True, which="major", alpha=0.3)
        if k == 0 or not shared:
            ax.set_ylabel(ylabels[k])
        if k == len(panels) - 1 or not shared:
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def terminal_chart(
    curves: dict[str, np.ndarray],
    width: int = 64,
    height: int = 14,
    xlabel: str = "distance from the loss",
) -> str:
    """A text chart of ``curves`` (log10 y, one row per band of decades, one column per bin
    of x); each curve is drawn with its own letter, ``*`` where curves overlap. Zeros and
    non-finite values are left out."""
    curves = {k: np.where(np.isfinite(y), y, 0.0) for k, y in curves.items()}
    finite = [np.log10(y[y > 0]) for y in curves.values() if np.any(y > 0)]
    if not finite:
        return "(every gradient is zero)"
    top = math.ceil(max(f.max() for f in finite))
    bottom = math.floor(min(f.min() for f in finite))
    if top == bottom:
        bottom -= 1
    steps = max(len(y) for y in curves.values())
    grid = [[" "] * width for _ in range(height)]
    legend, used = [], set()
    for label, y in curves.items():
        # The initial of a word of the label when free ("lstm, forget bias 1" -> F), else A-Z.
        initials = [w[0].upper() for w in label.replace(",", " ").split() if w[0].isalpha()]
        marker = next(c for c in [*initials, *"ABCDEFGHIJKLMNOPQRSTUVWXYZ#@%&+="] if c not in used)
        used.add(marker)
        legend.append(f"{marker} = {label}")
        for k in range(len(y)):
            if y[k] <= 0:
                continue
            col = min(width - 1, k * width // steps)
            row = round((top - math.log10(y[k])) / (top - bottom) * (height - 1))
            cell = grid[row][col]
            grid[row][col] = marker if cell in (" ", marker) else "*"
    lines = []
    for r, row in enumerate(grid):
        value = top - r * (top - bottom) / (height - 1)
        label = f"1e{value:+.0f}" if r in (0, height - 1) or r % 3 == 0 else ""
        lines.append(f"{label:>7} |" + "".join(row))
    lines.append(" " * 8 + "+" + "-" * width)
    caption = f" {xlabel} ({steps - 1} at the right) "
    lines.append(" " * 9 + f"0{caption:^{max(0, width - 2)}}")
    return "\n".join(lines + [" " * 9 + "   ".join(legend)])
