"""``tinygrad-lstm ops``: list the registered ops and cells and where each came from."""

import tinygrad_lstm as tg

NAME = "ops"
HELP = "list the registered ops (name, kind, arity, origin) and recurrent cells"


def add_arguments(parser) -> None:
    parser.add_argument("--kind", help="only ops of this kind (elementwise, reduction, ...)")


def run(args) -> int:
    infos = [i for i in tg.list_ops() if args.kind is None or i.kind == args.kind]
    rows = [(i.name, i.kind, "n" if i.arity is None else str(i.arity), i.origin, i.doc)
            for i in infos]
    _table(("op", "kind", "arity", "origin", "what"), rows)
    cells = tg.list_cells()
    if cells and args.kind is None:
        print()
        _table(("cell", "origin", "what"), [(c.name, c.origin, c.doc) for c in cells])
    print(f"\n{len(infos)} ops, {len(cells)} cells")
    return 0


def _table(header, rows) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-1])]
        print("  ".join(cells).rstrip())
