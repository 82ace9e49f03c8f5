"""``tinygrad-lstm ops``: list the registered ops and cells and where each came from."""

import argparse

from tinygrad_lstm.tooling.cli import CommandError
from tinygrad_lstm.tooling.commands._table import print_table

import tinygrad_lstm as tg
from tinygrad_lstm.registry import OP_KINDS

NAME = "ops"
HELP = "list the registered ops (name, kind, arity, origin) and recurrent cells"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", help="only ops of this kind (elementwise, reduction, ...)")


def run(args: argparse.Namespace) -> int:
    if args.kind is not None and args.kind not in OP_KINDS:
        raise CommandError(f"ops: unknown --kind {args.kind!r}; kinds: {', '.join(OP_KINDS)}")
    infos = [i for i in tg.list_ops() if args.kind is None or i.kind == args.kind]
    rows = [
        (i.name, i.kind, "n" if i.arity is None else str(i.arity), i.origin, i.doc) for i in infos
    ]
    print_table(("op", "kind", "arity", "origin", "what"), rows)
    cells = tg.list_cells()
    if cells and args.kind is None:
        print()
        print_table(("cell", "origin", "what"), [(c.name, c.origin, c.doc) for c in cells])
    print(f"\n{len(infos)} ops, {len(cells)} cells")
    return 0
