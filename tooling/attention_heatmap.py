"""An attention heatmap: which source position each output step read, as a PNG through
matplotlib when it is installed, and as text for a terminal.

Both take the source as a sequence of labels (one per column: characters, words), the
output as one label per row, and ``weights`` (rows, columns or more) whose row t is the
attention distribution of output step t; columns past the source (padding) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SHADES", "heatmap_png", "heatmap_text"]

# Darker for more weight; a cell gets the shade of floor(weight * len(SHADES)), so " " is a
# weight under 0.1 and "@" one of 0.9 or more.
SHADES = " .:-=+*#%@"


def _checked(
    where: str, source: Sequence[str], output: Sequence[str], weights: np.ndarray
) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != len(output) or weights.shape[1] < len(source):
        raise ValueError(
            f"{where}: weights must be ({len(output)}, >= {len(source)}) for {len(output)} "
            f"output and {len(source)} source labels, got shape {weights.shape}"
        )
    return weights[:, : len(source)]


def _shown(label: str) -> str:
    """A label a reader can see: a blank becomes '_'."""
    return label if label.strip() else "_"


def heatmap_text(source: Sequence[str], output: Sequence[str], weights: np.ndarray) -> str:
    """Rows: the output labels, each with the shade of its weight on every source column
    (``SHADES``, light to dark), then the source position it weighted most."""
    weights = _checked("heatmap_text", source, output, weights)
    pad = max(len(label) for label in output)
    shades = np.minimum((np.clip(weights, 0, 1) * len(SHADES)).astype(int), len(SHADES) - 1)
    lines = [" " * pad + " |" + "".join(_shown(s)[0] for s in source) + "|"]
    for label, row, weight in zip(output, shades, weights):
        top = int(weight.argmax())
        cells = "".join(SHADES[k] for k in row)
        lines.append(f"{label:>{pad}} |{cells}| {weight[top]:.2f} on {_shown(source[top])!r}")
    lines.append(f"shades, by weight: {' < '.join(repr(s) for s in SHADES)} (steps of 0.1)")
    return "\n".join(lines)


def heatmap_png(
    path: str, source: Sequence[str], output: Sequence[str], weights: np.ndarray, title: str = ""
) -> bool:
    """Draw the heatmap into ``path``; False (nothing written) without matplotlib."""
    weights = _checked("heatmap_png", source, output, weights)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(0.32 * len(source) + 1.8, 0.32 * len(output) + 1.4))
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(len(source)), [_shown(s) for s in source])
    ax.set_yticks(range(len(output)), list(output))
    ax.set(xlabel="source", ylabel="output step")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="attention weight")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
