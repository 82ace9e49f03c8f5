"""The date-normalisation data: every format names its date (read back by ``strptime``, not
by this module), the alphabet and the longest source are what the formats write, the
held-out dates are never trained on, and the encodings round-trip."""

import datetime as dt
import re

import numpy as np
import pytest
from tinygrad_lstm.tooling import dates

# How strptime reads each format once an ordinal's suffix ("3rd" -> "3") is dropped. %y reads
# 69-99 as 19xx and 00-68 as 20xx, the span of the corpus.
STRPTIME = {
    "ordinal_of": "%d of %B %Y",
    "the_ordinal": "the %d of %B, %Y",
    "month_day": "%B %d, %Y",
    "abbr_apostrophe": "%b %d, '%y",
    "day_month": "%d %B %Y",
    "day_abbr": "%d %b %Y",
    "weekday": "%A, %B %d, %Y",
    "weekday_abbr": "%a %d %b %Y",
    "upper_ordinal": "%B %d, %Y",
    "us_slash": "%m/%d/%Y",
    "us_short": "%m/%d/%y",
    "eu_dots": "%d.%m.%Y",
}
WEEKDAY = {"weekday": "%A", "weekday_abbr": "%a"}


def all_dates():
    day = dates.FIRST_DATE
    while day <= dates.LAST_DATE:
        yield day
        day += dt.timedelta(days=1)


def read_back(text, fmt):
    plain = re.sub(r"(\d+)(st|nd|rd|th|ST|ND|RD|TH)\b", r"\1", text)
    return dt.datetime.strptime(plain, STRPTIME[fmt]).date()


def test_every_format_is_read_back_as_its_date_by_strptime():
    assert set(STRPTIME) == set(dates.FORMATS)
    rng = np.random.default_rng(0)
    days = [dates.FIRST_DATE, dates.LAST_DATE, dt.date(2000, 2, 29), dt.date(2011, 11, 13)]
    days += [dates.FIRST_DATE + dt.timedelta(days=int(d)) for d in rng.integers(0, 36524, 300)]
    for day in days:
        for fmt in dates.FORMATS:
            text = dates.render(day, fmt)
            assert read_back(text, fmt) == day, (fmt, text)
            if fmt in WEEKDAY:  # strptime ignores the weekday; it must still be the right one
                assert text.split()[0].rstrip(",") == day.strftime(WEEKDAY[fmt]), text


def test_ordinals_take_their_suffix():
    written = [dates.render(dt.date(2021, 3, d), "ordinal_of").split()[0] for d in range(1, 32)]
    assert written[:4] == ["1st", "2nd", "3rd", "4th"]
    assert written[10:13] == ["11th", "12th", "13th"]
    assert written[20:23] == ["21st", "22nd", "23rd"] and written[30] == "31st"


def test_the_alphabet_and_the_longest_source_are_what_the_formats_write():
    seen, longest = set(), 0
    for day in all_dates():
        for fmt in dates.FORMATS:
            text = dates.render(day, fmt)
            seen.update(text)
            longest = max(longest, len(text))
    assert longest == dates.MAX_SOURCE_LEN
    assert sorted(seen) == sorted(dates.SOURCE_CHARS[1:]) and dates.SOURCE_CHARS[0] == "\0"


def test_held_out_dates_are_never_drawn_for_training():
    corpus = dates.DateCorpus(seed=3, held_out=500)
    total = (dates.LAST_DATE - dates.FIRST_DATE).days + 1
    assert len(corpus.train_days) + len(corpus.test_days) == total
    assert not set(corpus.train_days) & set(corpus.test_days)
    test_iso = {e[1] for e in corpus.test_examples()}
    assert len(test_iso) == 500
    drawn = corpus.batch(np.random.default_rng(0), 5000)
    assert not {e[1] for e in drawn} & test_iso
    assert {e[2] for e in drawn} == set(dates.FORMATS)
    for source, target, fmt in drawn[:50]:
        assert read_back(source, fmt).isoformat() == target


def test_the_split_and_the_batches_follow_the_seeds():
    a, b = dates.DateCorpus(seed=1), dates.DateCorpus(seed=1)
    assert a.test_examples() == b.test_examples()
    assert a.test_examples() != dates.DateCorpus(seed=2).test_examples()
    assert a.batch(np.random.default_rng(7), 20) == b.batch(np.random.default_rng(7), 20)


def test_sources_encode_time_major_and_padded():
    indices, lengths = dates.encode_sources(["3/3/21", "Mar 3, '21"], width=12)
    assert indices.shape == (12, 2) and lengths.tolist() == [6, 10]
    text = "".join(dates.SOURCE_CHARS[i] for i in indices[:10, 1])
    assert text == "Mar 3, '21" and np.all(indices[10:, 1] == 0) and np.all(indices[6:, 0] == 0)


def test_targets_are_shifted_behind_sos_for_teacher_forcing():
    inputs, targets = dates.encode_targets(["2021-03-03", "1969-12-31"])
    assert inputs.shape == targets.shape == (dates.TARGET_LEN, 2)
    assert dates.decode_target(targets[:, 1]) == "1969-12-31"
    assert dates.TARGET_TOKENS[targets[-1, 0]] == dates.EOS
    assert dates.TARGET_TOKENS[inputs[0, 0]] == dates.SOS
    np.testing.assert_array_equal(inputs[1:], targets[:-1])
    assert dates.decode_target([dates.TARGET_TOKENS.index(c) for c in "12-"]) == "12-"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dates.render(dt.date(2021, 3, 3), "iso"), "dates.render: unknown format 'iso'"),
        (
            lambda: dates.encode_sources(["x" * 30]),
            "dates.encode_sources: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' has 30 characters, not 1..29",
        ),
        (
            lambda: dates.encode_sources(["3 Mär 2021"]),
            "dates.encode_sources: '3 Mär 2021' has characters outside the alphabet: ['ä']",
        ),
        (
            lambda: dates.encode_targets(["2021-3-3"]),
            "dates.encode_targets: expected an ISO date YYYY-MM-DD, got '2021-3-3'",
        ),
        (
            lambda: dates.DateCorpus(held_out=36525),
            "DateCorpus: held_out must leave training dates, got 36525 of 36525",
        ),
        (lambda: dates.DateCorpus(held_out=0), "DateCorpus: held_out must be an integer >= 1"),
        (
            lambda: dates.DateCorpus().batch(np.random.default_rng(0), 0),
            "DateCorpus.batch: batch_size must be an integer >= 1",
        ),
    ],
)
def test_bad_arguments_are_refused_with_one_line(call, message):
    with pytest.raises((ValueError, TypeError)) as caught:
        call()
    assert str(caught.value).startswith(message), str(caught.value)
