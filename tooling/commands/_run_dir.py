"""The output directory of ``tinygrad-lstm train``: checked before the first step, and its
files (``checkpoint.npz``, ``metrics.csv``, ``loss.png``) written so that a crash, a full
disk or Ctrl-C never leaves them half-written or out of step with each other."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import tempfile
from pathlib import Path

from tinygrad_lstm.tooling.cli import CommandError

from tinygrad_lstm.checkpoint import CHECKPOINT_FILE

METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"
METRICS_FIELDS = ["step", "loss", "grad_norm", "seconds"]
RUN_FILES = (CHECKPOINT_FILE, METRICS_FILE, PLOT_FILE)


def holds_run(directory: Path) -> bool:
    """True when ``directory`` has the checkpoint or the metrics of a run."""
    return any((directory / name).exists() for name in RUN_FILES[:2])


def prepare(out: Path, *, continuing: bool, force: bool) -> None:
    """Make ``out`` ready before any training: a writable directory, and not another run
    (unless ``continuing`` it, or ``force`` which deletes that run's files)."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a directory")
    if out.is_dir() and holds_run(out) and not continuing:
        if not force:
            raise CommandError(
                f"--out {out} holds a run already; pass --resume {out} to "
                "continue it, or --force to overwrite it"
            )
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise CommandError(f"cannot write to --out {out}: {exc.strerror or exc}") from None


def read_metrics(path: Path, upto: int) -> list[dict]:
    """The rows of ``path`` up to step ``upto`` (none when the file is missing); a damaged
    file is one clear error."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != METRICS_FIELDS:
                raise ValueError(f"its header is {reader.fieldnames}, not {METRICS_FIELDS}")
            rows = []
            for row in reader:
                step = int(row["step"])
                for key in METRICS_FIELDS[1:]:
                    float(row[key])
                if step <= upto:
                    rows.append(row)
    except (ValueError, TypeError, csv.Error, UnicodeDecodeError) as exc:
        raise CommandError(f"{path} is damaged ({exc}); fix or delete it to resume") from None
    steps = [int(r["step"]) for r in rows]
    if steps != list(range(steps[0], steps[0] + len(steps)) if steps else []):
        raise CommandError(
            f"{path} is damaged (its steps do not count up by one); fix or delete it to resume"
        )
    return rows


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` (mode 0666 minus the umask, as
    any file), then rename it over ``path``: readers see the old file or the new one."""
    temp = path.with_name(f".{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_metrics(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRICS_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, buffer.getvalue().encode("utf-8"))


def plot(
    path: Path, rows: list[dict], baseline: float | None, baseline_label: str, title: str
) -> bool:
    """``loss.png``: the training loss on a log scale; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], lw=1)
    if baseline is not None:
        ax.axhline(baseline, color="gray", ls="--", label=baseline_label)
        ax.legend()
    ax.set(xlabel="step", ylabel="training loss", title=title, yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
