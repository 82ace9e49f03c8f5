"""What ``tinygrad-lstm bptt`` shows: the summary table of the gradient that reaches the
first step, and the curves (a PNG via matplotlib, else terminal charts).

Split out of ``bptt.py``, the command, which measures what this module shows; the clipping
comparison's own table is in ``_clipping.py``, the chart drawing in ``_charts.py``.
"""

from __future__ import annotations

import argparse

import numpy as np
from tinygrad_lstm.tooling import tasks
from tinygrad_lstm.tooling.viz import StepGradients

from ._charts import plot_png, terminal_chart
from ._clipping import ClippingRuns


def draw(
    args: argparse.Namespace, before: dict, after: dict, clipping: dict[str, ClippingRuns]
) -> None:
    """The curves against the distance from the loss, at initialisation and after training,
    and the clipping runs' losses: a PNG at ``args.out``, else one terminal chart each."""
    scale = "" if args.init_scale is None else f", spectral radius {args.init_scale:g}"
    panels = [(f"at initialisation (T={args.seq_len}, H={args.hidden}{scale})", before)]
    xlabels = ["distance from the loss (time steps)"]
    if args.train_steps:
        panels.append((f"after {args.train_steps} Adam steps on the adding task", after))
        xlabels.append(xlabels[0])
    ylabels = ["||dL/dh_t|| / ||dL/dh_T||"] * len(panels)
    if clipping:
        curves = {}
        for label, runs in clipping.items():
            curves[f"{label}, no clipping"] = np.asarray(runs.unclipped)
            curves[f"{label}, clip {args.clip:g}"] = np.asarray(runs.clipped)
        title = f"training loss, SGD lr {args.lr:g}: no clipping vs clip {args.clip:g}"
        panels.append((title, curves))
        xlabels.append("training step")
        ylabels.append("loss")
    drawn = not args.terminal and plot_png(
        args.out,
        panels,
        ylabels,
        "Gradient reaching back through time: loss on the last step",
        xlabels,
    )
    if drawn:
        print(f"\nwrote {args.out}")
    else:
        for (title, curves), ylabel, xlabel in zip(panels, ylabels, xlabels):
            print(f"\n{ylabel}, {title}\n{terminal_chart(curves, xlabel=xlabel)}")


def print_summary(args: argparse.Namespace, rows: list[dict], task: tasks.Task) -> None:
    """One row per model: ``||dL/dh_0|| / ||dL/dh_{T-1}||`` at initialisation (and for the
    LSTM's cell state), then after training, with the training loss (mean of the last
    10% of steps)."""
    trained = bool(args.train_steps)
    print(
        f"Gradient that reaches the first step, ||dL/dh_0|| / ||dL/dh_{args.seq_len - 1}||: "
        f"adding task, T={args.seq_len}, hidden {args.hidden}, batch {args.batch}, "
        f"seed {args.seed}, loss on the last step"
    )
    with_c = any("c" in row["init"].norms for row in rows)
    header = ["cell", "at init", *(["(c, LSTM)"] if with_c else [])]
    if trained:
        header += [
            f"after {args.train_steps} steps",
            *(["(c, LSTM)"] if with_c else []),
            "train loss",
        ]
    table = []
    for row in rows:
        results = [row["init"], *([row["trained"]] if trained else [])]
        cells = [row["label"]]
        for result in results:
            cells += [f"{result.ratio():.1e}", *([_c_ratio(result)] if with_c else [])]
        table.append(cells + ([f"{row['loss']:.3f}"] if trained else []))
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for cells in [header, *table]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )
        )
    if trained:
        print(
            f"(train loss: mean of the last 10% of steps; {task.baseline_label}: "
            f"{task.baseline():.3f})"
        )


def _c_ratio(result: StepGradients) -> str:
    return f"{result.ratio('c'):.1e}" if "c" in result.norms else "-"
