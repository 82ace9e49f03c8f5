"""Date normalisation as a translation task: human-written dates into ISO 8601 (NumPy only).

Every date is a ``datetime.date``, written out by one of ``FORMATS`` ("3rd of March 2021",
"Mar 3, '21", "03/03/2021", ...); the translation is ``date.isoformat()``, "2021-03-03".
Nothing is downloaded: the calendar is Python's.

The dates run from 1969-01-01 to 2068-12-31, the span in which a two-digit year means one
year only by ``strptime``'s ``%y`` rule (69-99 are 19xx, 00-68 are 20xx). Slashes put the
month first (US: 03/04/2021 is March 4), dots the day first (04.03.2021 is March 4), so each
string names exactly one date. ``DateCorpus`` shuffles the span with a seed and holds some
dates out: the model is scored on dates it never saw in training, in any format.

Characters become integer indices: the source alphabet is ``SOURCE_CHARS`` (index 0 pads),
the target tokens ``TARGET_TOKENS`` (``<sos>`` starts decoding, ``<eos>`` ends it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import numpy as np

from .sequence_task import check_count, check_rng

__all__ = [
    "EOS",
    "FIRST_DATE",
    "FORMATS",
    "LAST_DATE",
    "MAX_SOURCE_LEN",
    "SOS",
    "SOURCE_CHARS",
    "TARGET_LEN",
    "TARGET_TOKENS",
    "DateCorpus",
    "Example",
    "decode_target",
    "encode_sources",
    "encode_targets",
    "render",
]

MONTHS = (
    "January February March April May June July August September October November December"
).split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
FIRST_DATE, LAST_DATE = dt.date(1969, 1, 1), dt.date(2068, 12, 31)


def _ordinal(day: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _month(d: dt.date) -> str:
    return MONTHS[d.month - 1]


# Each format, by name: how a person might write the date. The names label the per-format
# accuracy; the examples are 2021-03-03.
FORMATS: dict[str, Callable[[dt.date], str]] = {
    "ordinal_of": lambda d: f"{_ordinal(d.day)} of {_month(d)} {d.year}",  # 3rd of March 2021
    "the_ordinal": lambda d: f"the {_ordinal(d.day)} of {_month(d)}, {d.year}",
    "month_day": lambda d: f"{_month(d)} {d.day}, {d.year}",  # March 3, 2021
    "abbr_apostrophe": lambda d: f"{_month(d)[:3]} {d.day}, '{d.year % 100:02d}",  # Mar 3, '21
    "day_month": lambda d: f"{d.day} {_month(d)} {d.year}",  # 3 March 2021
    "day_abbr": lambda d: f"{d.day:02d} {_month(d)[:3]} {d.year}",  # 03 Mar 2021
    "weekday": lambda d: f"{WEEKDAYS[d.weekday()]}, {_month(d)} {d.day}, {d.year}",
    "weekday_abbr": lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {_month(d)[:3]} {d.year}",
    "upper_ordinal": lambda d: f"{_month(d)} {_ordinal(d.day)}, {d.year}".upper(),  # MARCH 3RD..
    "us_slash": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",  # 03/03/2021
    "us_short": lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",  # 3/3/21
    "eu_dots": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",  # 03.03.2021
}

_LETTERS = "".join(MONTHS + WEEKDAYS) + "thestndrdof"
# Index 0 is padding; every character a format can write follows (tests/tooling checks it).
SOURCE_CHARS = "\0" + "".join(sorted(set(_LETTERS + _LETTERS.upper() + "0123456789 ,'/.")))
SOS, EOS = "<sos>", "<eos>"
TARGET_TOKENS = (SOS, EOS, *"-0123456789")
# "Wednesday, September 30, 2021": the longest any format writes (tests/tooling checks it).
MAX_SOURCE_LEN = 29
TARGET_LEN = len("2021-03-03") + 1  # the ISO date, then <eos>

_SOURCE_INDEX = {ch: i for i, ch in enumerate(SOURCE_CHARS)}
_TARGET_INDEX = {tok: i for i, tok in enumerate(TARGET_TOKENS)}

# (human-written source, ISO target, format name)
Example = tuple[str, str, str]


def render(date: dt.date, fmt: str) -> str:
    """``date`` written in format ``fmt`` (a key of ``FORMATS``)."""
    if fmt not in FORMATS:
        raise ValueError(f"dates.render: unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    return FORMATS[fmt](date)


def encode_sources(
    sources: Sequence[str], width: int = MAX_SOURCE_LEN
) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> (indices (width, N) int64, time-major, 0-padded; lengths (N,) int64)."""
    indices = np.zeros((width, len(sources)), dtype=np.int64)
    for b, text in enumerate(sources):
        if not 1 <= len(text) <= width:
            raise ValueError(
                f"dates.encode_sources: {text!r} has {len(text)} characters, not 1..{width}"
            )
        unknown = sorted(set(text) - set(SOURCE_CHARS[1:]))
        if unknown:
            raise ValueError(
                f"dates.encode_sources: {text!r} has characters outside the alphabet: {unknown}"
            )
        indices[: len(text), b] = [_SOURCE_INDEX[ch] for ch in text]
    return indices, np.array([len(t) for t in sources], dtype=np.int64)


def encode_targets(targets: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """ISO strings -> (decoder inputs, targets), each (TARGET_LEN, N) int64, time-major.

    The targets are the string's tokens then ``<eos>``; the inputs are the same shifted one
    step right behind ``<sos>`` (teacher forcing: step t sees the true token t - 1)."""
    rows = []
    for text in targets:
        if len(text) != TARGET_LEN - 1 or set(text) - set(TARGET_TOKENS[2:]):
            raise ValueError(f"dates.encode_targets: expected an ISO date YYYY-MM-DD, got {text!r}")
        rows.append([_TARGET_INDEX[ch] for ch in text] + [_TARGET_INDEX[EOS]])
    out = np.array(rows, dtype=np.int64).T.reshape(TARGET_LEN, len(targets))
    inputs = np.concatenate([np.full((1, len(targets)), _TARGET_INDEX[SOS]), out[:-1]])
    return inputs, out


def decode_target(tokens: Sequence[int]) -> str:
    """Target token indices -> text, up to (not including) the first ``<eos>``."""
    text = []
    for token in tokens:
        if TARGET_TOKENS[token] == EOS:
            break
        text.append(TARGET_TOKENS[token])
    return "".join(text)


class DateCorpus:
    """The dates from ``FIRST_DATE`` to ``LAST_DATE``, shuffled by ``seed``, ``held_out`` of
    them kept apart for testing.

    ``batch(rng, n)`` draws n training examples (a training date in a uniformly drawn
    format); ``test_examples()`` gives every held-out date once, in a format drawn from
    ``seed``. Each example is ``(source, target, format name)``.
    """

    def __init__(self, seed: int = 0, held_out: int = 2000):
        total = (LAST_DATE - FIRST_DATE).days + 1
        check_count("DateCorpus", "held_out", held_out)
        if held_out >= total:
            raise ValueError(
                f"DateCorpus: held_out must leave training dates, got {held_out} of {total}"
            )
        rng = np.random.default_rng(seed)
        order = rng.permutation(total)
        self.seed, self.held_out = seed, int(held_out)
        self.train_days, self.test_days = order[held_out:], np.sort(order[:held_out])
        self._test_formats = rng.integers(0, len(FORMATS), held_out)

    @staticmethod
    def _example(day: int, fmt: int) -> Example:
        date = FIRST_DATE + dt.timedelta(days=int(day))
        name = list(FORMATS)[fmt]
        return render(date, name), date.isoformat(), name

    def batch(self, rng: np.random.Generator, batch_size: int) -> list[Example]:
        """``batch_size`` training examples drawn from ``rng``."""
        check_rng("DateCorpus.batch", rng)
        check_count("DateCorpus.batch", "batch_size", batch_size)
        days = rng.choice(self.train_days, batch_size)
        fmts = rng.integers(0, len(FORMATS), batch_size)
        return [self._example(d, f) for d, f in zip(days, fmts)]

    def test_examples(self) -> list[Example]:
        """Every held-out date once, in date order, each in its (seeded) format."""
        return [self._example(d, f) for d, f in zip(self.test_days, self._test_formats)]
