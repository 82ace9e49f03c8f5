"""The one table printer of the commands: columns padded to their widest cell.

``print_table(header, rows, right={3, 4})`` right-aligns columns 3 and 4 (numbers) and
left-aligns the rest; trailing spaces are dropped, so a free-text last column is not padded.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def format_table(
    header: Sequence[object], rows: Sequence[Sequence[object]], right: Collection[int] = ()
) -> list[str]:
    """The lines of the table: ``header`` then ``rows``, cells joined by two spaces."""
    table = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in table
    ]


def print_table(
    header: Sequence[object], rows: Sequence[Sequence[object]], right: Collection[int] = ()
) -> None:
    """Print ``format_table(header, rows, right)``."""
    for line in format_table(header, rows, right):
        print(line)
