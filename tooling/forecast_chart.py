"""Forecasts against the truth, year by year: a PNG through matplotlib when it is installed,
a text chart for a terminal otherwise (NumPy only; matplotlib is optional)."""

from __future__ import annotations

import numpy as np

__all__ = ["forecast_png", "forecast_text_chart"]

# Curves drawn behind the truth, in this order; the truth is black and on top.
_STYLES = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")


def _check_curves(where: str, years: np.ndarray, curves: dict[str, np.ndarray]) -> None:
    for label, y in curves.items():
        if np.shape(y) != np.shape(years):
            raise ValueError(
                f"{where}: curve {label!r} has shape {np.shape(y)}, the years {np.shape(years)}"
            )


def forecast_png(
    path: str, years: np.ndarray, truth: np.ndarray, forecasts: dict[str, np.ndarray], title: str
) -> bool:
    """Draw ``truth`` and each forecast (label -> values, one per year) against ``years``
    into ``path``; False (and nothing written) without matplotlib."""
    _check_curves("forecast_png", years, {"truth": truth, **forecasts})
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 4))
    for (label, y), color in zip(forecasts.items(), _STYLES):
        ax.plot(years, y, label=label, color=color, lw=1.3, alpha=0.85)
    ax.plot(years, truth, label="truth", color="black", lw=2.0, marker="o", ms=2.5)
    ax.set(title=title, xlabel="year", ylabel="sunspot number")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def forecast_text_chart(
    years: np.ndarray, curves: dict[str, np.ndarray], height: int = 14, width: int = 72
) -> str:
    """A text chart: one column per year (years binned when there are more than ``width``),
    one row per band of values, linear scale. Each curve is drawn with a letter of its
    label (the first one still free); ``*`` marks a cell where several curves meet."""
    _check_curves("forecast_text_chart", years, curves)
    if height < 2 or width < 1 or not np.size(years):
        raise ValueError(
            f"forecast_text_chart: needs height >= 2, width >= 1 and one year or more, got "
            f"height {height}, width {width}, {np.size(years)} years"
        )
    years = np.asarray(years)
    columns = min(width, len(years))
    finite = np.concatenate([np.asarray(y, np.float64) for y in curves.values()])
    finite = finite[np.isfinite(finite)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high == low:
        high = low + 1.0
    grid = [[" "] * columns for _ in range(height)]
    legend, used = [], set()
    for label, y in curves.items():
        marker = next(
            c for c in label.upper() + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c.isalpha() and c not in used
        )
        used.add(marker)
        legend.append(f"{marker} = {label}")
        for k, value in enumerate(np.asarray(y, np.float64)):
            if not np.isfinite(value):
                continue
            col = k * columns // len(years)
            row = round((high - value) / (high - low) * (height - 1))
            grid[row][col] = marker if grid[row][col] in (" ", marker) else "*"
    lines = []
    for r, row in enumerate(grid):
        value = high - r * (high - low) / (height - 1)
        label = f"{value:.0f}" if r in (0, height - 1) or r % 4 == 0 else ""
        lines.append(f"{label:>7} |" + "".join(row))
    lines.append(" " * 8 + "+" + "-" * columns)
    first, last = str(years[0]), str(years[-1])
    lines.append(" " * 9 + first + last.rjust(max(1, columns - len(first))))
    return "\n".join(lines + [" " * 9 + "   ".join(legend) + "   * = several"])
