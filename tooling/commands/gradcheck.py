"""``tinygrad-lstm gradcheck``: the property-based checks of every registered op and cell,
plugins included, as one table; a non-zero exit names the failing case.

An op is checked by ``check_op`` (gradients, dtypes, inputs untouched, graph freed, and its
scalar rule against its forward and backward), a cell by ``check_cell`` (gradients of its
sequence layer, and the compiled layer against composed) on hypothesis-drawn cases."""

from __future__ import annotations

import argparse
import math
import shlex
import sys

from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._args import POSITIVE_INT, SEED
from tinygrad_lstm.tooling.commands._table import print_table
from tinygrad_lstm.tooling.testing import CELL_EXAMPLES, CheckReport, check_cell, check_op
from tqdm import tqdm

import tinygrad_lstm as tg

NAME = "gradcheck"
HELP = (
    "check the gradients of every registered op and cell (plugins included) against "
    "central differences on hypothesis-drawn cases, ops' scalar rules against the ops, "
    "and compiled cells against composed"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ops",
        help="comma-separated op names, or 'all' (default: all, unless only --cells is given)",
    )
    parser.add_argument(
        "--cells",
        help="comma-separated cell names, or 'all' (default: all, unless only --ops is given)",
    )
    parser.add_argument(
        "--max-examples",
        type=POSITIVE_INT,
        default=25,
        metavar="N",
        help="hypothesis examples per op (default 25)",
    )
    parser.add_argument(
        "--cell-examples",
        type=POSITIVE_INT,
        default=CELL_EXAMPLES,
        metavar="N",
        help=f"hypothesis-drawn layer configurations per cell (default {CELL_EXAMPLES})",
    )
    parser.add_argument(
        "--seed",
        type=SEED,
        default=0,
        help="seed of the example search and the upstream gradients (default 0)",
    )


def _select(given: str | None, registered: list[str], what: str, default_all: bool) -> list[str]:
    if given is None:
        return registered if default_all else []
    if given.strip() == "all":
        return registered
    names = [n.strip() for n in given.split(",") if n.strip()]
    if not names:
        raise CommandError(
            f"gradcheck: --{what}s {given!r} names no {what}; checking nothing "
            f"is not a pass (registered {what}s: {', '.join(registered)})"
        )
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise CommandError(
            f"gradcheck: unknown {what} {', '.join(map(repr, unknown))}; "
            f"registered {what}s: {', '.join(registered)}"
        )
    return names


def _origin(kind: str, name: str) -> str:
    info = tg.op_info(name) if kind == "op" else tg.cell_info(name)
    return info.origin.split(":")[0]


def run(args: argparse.Namespace) -> int:
    neither = args.ops is None and args.cells is None
    ops = _select(args.ops, [i.name for i in tg.list_ops() if i.differentiable], "op", neither)
    cells = _select(args.cells, [c.name for c in tg.list_cells()], "cell", neither)
    jobs = [("op", n) for n in ops] + [("cell", n) for n in cells]
    if not jobs:
        raise CommandError("gradcheck: no op or cell to check")
    reports: list[tuple[str, CheckReport]] = []
    with tqdm(jobs, desc="gradcheck", unit="check", file=sys.stderr, leave=False) as bar:
        for kind, name in bar:
            bar.set_postfix_str(f"{kind} {name}")
            report = (
                check_op(name, max_examples=args.max_examples, seed=args.seed)
                if kind == "op"
                else check_cell(name, seed=args.seed, max_examples=args.cell_examples)
            )
            reports.append((_origin(kind, name), report))
    _print_table(reports)
    failed = [r for _, r in reports if not r.ok]
    print(
        f"\n{len(reports) - len(failed)} passed, {len(failed)} failed "
        f"({len(ops)} ops, {len(cells)} cells; --max-examples {args.max_examples}, "
        f"--cell-examples {args.cell_examples}, --seed {args.seed})"
    )
    # The reproduce line must find the same names: it keeps every --import of this run.
    imports = "".join(f"--import {shlex.quote(spec)} " for spec in args.imports)
    for r in failed:
        budget = (
            f"--ops {r.name} --max-examples {args.max_examples}"
            if r.kind == "op"
            else f"--cells {r.name} --cell-examples {args.cell_examples}"
        )
        print(
            f"\nFAILED {r.kind} {r.name}: {r.failure}\n  reproduce: tinygrad-lstm gradcheck "
            f"{imports}{budget} --seed {args.seed}"
        )
    return 1 if failed else 0


def _error(report: CheckReport) -> str:
    """A passing row's worst error, or the error of the case that failed."""
    error = report.worst_rel_error
    if math.isnan(error):
        return "n/a"  # the failure is not about gradient values: see the message below
    return "non-finite" if math.isinf(error) else f"{error:.2e}"


def _print_table(reports: list[tuple[str, CheckReport]]) -> None:
    rows = [
        (r.name, r.kind, origin, r.cases, _error(r), "ok" if r.ok else "FAIL")
        for origin, r in reports
    ]
    print_table(
        ("name", "kind", "origin", "cases", "worst rel. error", "verdict"), rows, right=(3, 4)
    )
