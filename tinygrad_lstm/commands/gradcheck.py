"""``tinygrad-lstm gradcheck``: the property-based gradient checks of every registered op and
cell, plugins included, as one table; a non-zero exit names the failing case."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

import tinygrad_lstm as tg
from tinygrad_lstm.cli import CommandError
from tinygrad_lstm.testing import CheckReport, check_cell, check_op

NAME = "gradcheck"
HELP = ("check the gradients of every registered op and cell (plugins included) against "
        "central differences on hypothesis-drawn cases")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ops", help="comma-separated op names, or 'all' (default: all, unless "
                        "only --cells is given)")
    parser.add_argument("--cells", help="comma-separated cell names, or 'all' (default: all, "
                        "unless only --ops is given)")
    parser.add_argument("--max-examples", type=int, default=25, metavar="N",
                        help="hypothesis examples per op (default 25)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the example search and the upstream gradients (default 0)")


def _select(given: str | None, registered: list[str], what: str, default_all: bool) -> list[str]:
    if given is None:
        return registered if default_all else []
    if given.strip() == "all":
        return registered
    names = [n.strip() for n in given.split(",") if n.strip()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise CommandError(f"gradcheck: unknown {what} {', '.join(map(repr, unknown))}; "
                           f"registered {what}s: {', '.join(registered)}")
    return names


def _origin(kind: str, name: str) -> str:
    info = tg.op_info(name) if kind == "op" else tg.cell_info(name)
    return info.origin.split(":")[0]


def run(args: argparse.Namespace) -> int:
    if args.max_examples < 1:
        raise CommandError(f"gradcheck: --max-examples must be at least 1, got {args.max_examples}")
    neither = args.ops is None and args.cells is None
    ops = _select(args.ops, [i.name for i in tg.list_ops() if i.differentiable], "op", neither)
    cells = _select(args.cells, [c.name for c in tg.list_cells()], "cell", neither)
    jobs = [("op", n) for n in ops] + [("cell", n) for n in cells]
    reports: list[tuple[str, CheckReport]] = []
    with tqdm(jobs, desc="gradcheck", unit="check", file=sys.stderr, leave=False) as bar:
        for kind, name in bar:
            bar.set_postfix_str(f"{kind} {name}")
            report = (check_op(name, max_examples=args.max_examples, seed=args.seed)
                      if kind == "op" else check_cell(name, seed=args.seed))
            reports.append((_origin(kind, name), report))
    _print_table(reports)
    failed = [r for _, r in reports if not r.ok]
    print(f"\n{len(reports) - len(failed)} passed, {len(failed)} failed "
          f"({len(ops)} ops, {len(cells)} cells; --max-examples {args.max_examples}, "
          f"--seed {args.seed})")
    for r in failed:
        flag = "--ops" if r.kind == "op" else "--cells"
        print(f"\nFAILED {r.kind} {r.name}: {r.failure}\n  reproduce: tinygrad-lstm gradcheck "
              f"{flag} {r.name} --max-examples {args.max_examples} --seed {args.seed}")
    return 1 if failed else 0


def _print_table(reports: list[tuple[str, CheckReport]]) -> None:
    header = ("name", "kind", "origin", "cases", "worst rel. error", "verdict")
    rows = [(r.name, r.kind, origin, str(r.cases), f"{r.worst_rel_error:.2e}",
             "ok" if r.ok else "FAIL") for origin, r in reports]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())
