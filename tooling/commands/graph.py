"""``tinygrad-lstm graph``: the unrolled computation graph of a recurrent layer, as Graphviz DOT
(and SVG or PNG when Graphviz's ``dot`` program is installed)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._memory import check_layer_fits
from tinygrad_lstm.tooling.viz import unrolled_graph

import tinygrad_lstm as tg

NAME = "graph"
HELP = "write the unrolled graph of a recurrent layer as Graphviz DOT, one cluster per time step"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cell", default="lstm", help="a registered cell (default lstm)")
    parser.add_argument("--seq-len", type=int, default=3, help="time steps (default 3)")
    parser.add_argument("--input-size", type=int, default=2, help="input features (default 2)")
    parser.add_argument("--hidden", type=int, default=3, help="hidden size (default 3)")
    parser.add_argument("--layers", type=int, default=1, help="stacked layers (default 1)")
    parser.add_argument("--bidirectional", action="store_true", help="add a reverse direction")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("graph.dot"),
        help="the DOT file to write (default graph.dot)",
    )
    parser.add_argument(
        "--format",
        choices=("svg", "png", "none"),
        default="svg",
        help="also render OUT with `dot` in this format, when `dot` is installed (default svg)",
    )


def run(args: argparse.Namespace) -> int:
    for flag, value in (
        ("--seq-len", args.seq_len),
        ("--input-size", args.input_size),
        ("--hidden", args.hidden),
        ("--layers", args.layers),
    ):
        if value < 1:
            raise CommandError(f"graph: {flag} must be at least 1, got {value}")
    if args.cell not in [c.name for c in tg.list_cells()]:
        raise CommandError(
            f"graph: unknown cell {args.cell!r}; registered cells: "
            f"{', '.join(c.name for c in tg.list_cells())}"
        )
    check_layer_fits(
        "graph",
        args.cell,
        args.input_size,
        args.hidden,
        args.seq_len,
        layers=args.layers,
        bidirectional=args.bidirectional,
    )
    text = unrolled_graph(
        args.cell,
        args.seq_len,
        args.input_size,
        args.hidden,
        num_layers=args.layers,
        bidirectional=args.bidirectional,
    )
    try:
        args.out.write_text(text)
    except OSError as exc:
        raise CommandError(f"graph: cannot write {args.out}: {exc.strerror}") from None
    nodes = len(re.findall(r"^\s*n\d+ \[", text, re.MULTILINE))
    clusters = len(re.findall(r"^\s*subgraph cluster_", text, re.MULTILINE))
    print(
        f"wrote {args.out}: {nodes} op nodes in {clusters} clusters (one per layer, direction "
        f"and time step, plus each direction's input projection)"
    )
    if args.format == "none":
        return 0
    rendered = args.out.with_suffix(f".{args.format}")
    if shutil.which("dot") is None:
        print(f"Graphviz `dot` not found; to render: dot -T{args.format} {args.out} -o {rendered}")
        return 0
    proc = subprocess.run(
        ["dot", f"-T{args.format}", str(args.out), "-o", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CommandError(f"graph: dot failed: {proc.stderr.strip()}")
    print(f"wrote {rendered}")
    return 0
