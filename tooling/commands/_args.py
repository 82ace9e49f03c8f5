"""Argument types shared by the commands: a number that is out of range, NaN or infinite is
refused while the command line is parsed, and the message names the flag.

Each factory returns an argparse ``type=`` callable; argparse prefixes its message with
``argument --flag:``, so ``--lr nan`` reads ``argument --lr: must be a finite number > 0,
got 'nan'``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An int in ``[low, high]`` (no upper bound when ``high`` is None)."""
    bounds = f">= {low}" if high is None else f"in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def finite(low: float, *, strict: bool) -> Callable[[str], float]:
    """A finite float above ``low`` (``strict``) or at least ``low``; NaN and inf refused."""
    bounds = f"> {low:g}" if strict else f">= {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a finite number {bounds}, got {text!r}"
            ) from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be a finite number {bounds}, got {text!r}")
        return value

    parse.__name__ = "finite"
    return parse


# numpy's generators take seeds in [0, 2**128); a JSON-able int below 2**63 is plenty.
SEED = integer(0, 2**63 - 1)
POSITIVE_INT = integer(1)
POSITIVE_FLOAT = finite(0.0, strict=True)
