"""The train, sample and demo commands: outputs, exact resume, and one-line errors."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from tinygrad_lstm.tooling.cli import main

from tinygrad_lstm import checkpoint

TINY = ["--hidden", "8", "--seq-len", "8", "--batch", "4"]


def _cli(*args):
    """Run the real console entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_lstm", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(path):
    with open(path / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_checkpoint_metrics_and_plot(tmp_path):
    done = _cli(
        "train", "--task", "adding", "--cell", "gru", *TINY, "--steps", "5", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "step/s" in done.stderr and "gnorm=" in done.stderr  # the tqdm bar
    assert "trained to step 5 in" in done.stdout and "on a fresh batch: loss" in done.stdout
    rows = _rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(float(r["grad_norm"]) > 0 for r in rows)
    meta = checkpoint.read(tmp_path).meta
    assert meta["step"] == 5 and meta["model"]["cell"] == "gru"
    assert set(meta["eval"]) == {"loss", "mse", "accuracy"}
    pytest.importorskip("matplotlib")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "options",
    [
        ["--task", "adding", "--cell", "lstm"],
        ["--task", "text", "--cell", "gru", "--optimizer", "adagrad", "--bptt", "3"],
        [
            "--task",
            "copy",
            "--cell",
            "rnn",
            "--seq-len",
            "12",
            "--optimizer",
            "sgd",
            "--bidirectional",
            "--layers",
            "2",
        ],
    ],
    ids=["adding-lstm-adam", "text-gru-adagrad-bptt", "copy-birnn-sgd"],
)
def test_resume_gives_the_same_state_as_an_uninterrupted_run(tmp_path, options):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", *TINY, *options, "--steps", "6", "--out", str(straight)]) == 0
    assert main(["train", *TINY, *options, "--steps", "3", "--out", str(split)]) == 0
    assert main(["train", "--resume", str(split), "--steps", "6"]) == 0
    a, b = checkpoint.read(straight), checkpoint.read(split)
    assert a.meta == b.meta
    for key in a.model:
        np.testing.assert_array_equal(a.model[key], b.model[key], err_msg=key)
    for sa, sb in zip(a.optimizer["state"], b.optimizer["state"]):
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    assert [r["loss"] for r in _rows(straight)] == [r["loss"] for r in _rows(split)]


def test_sample_continues_the_prime(tmp_path, capsys):
    assert main(["train", "--task", "text", *TINY, "--steps", "2", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tmp_path),
                "--prime",
                "The ",
                "--length",
                "40",
                "--temperature",
                "0.5",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("The ") and len(text) == 44


def test_demo_prints_its_table():
    done = _cli("demo", "--steps", "3", "--seq-len", "6", "--hidden", "4", "--batch", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("cell"))
    assert [line.split()[0] for line in lines[header + 1 : header + 4]] == ["rnn", "lstm", "gru"]
    assert "MSE 0.167" in done.stdout and "tinygrad-lstm train" in done.stdout


def test_bad_arguments_fail_in_one_line_through_the_console_script(tmp_path):
    done = _cli("train", "--task", "parity", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown task 'parity'; choose from "
        "adding, copy, reber, sine, text, sunspots, sentiment"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--cell", "lstmm"], "unknown cell 'lstmm'; registered cells:"),
        (["train", "--hidden", "0"], "argument --hidden: must be an integer >= 1, got 0"),
        (["train", "--steps", "-3"], "argument --steps: must be an integer >= 1, got -3"),
        (["train", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
        (["train", "--task", "text", "--bidirectional"], "a bidirectional model would see"),
        (["train", "--task", "copy", "--bidirectional", "--bptt", "4"], "cannot be truncated"),
        (["train", "--task", "copy", "--seq-len", "5"], "copy: seq_len must be at least 11"),
        (["train", "--task", "sentiment", "--bptt", "4"], "task sentiment pads its sequences"),
        (["train", "--task", "sunspots", "--seq-len", "300"], "sunspots: seq_len must be below"),
        (["train", "--text", "a.txt"], "--text is for --task text, not --task adding"),
        (["train", "--task", "text", "--text", "missing.txt"], "text: cannot read missing.txt"),
        (["train", "--resume", "nowhere"], "no checkpoint at nowhere"),
        (["sample", "--checkpoint", "nowhere"], "no checkpoint at nowhere"),
        (
            ["sample", "--checkpoint", ".", "--temperature", "0"],
            "argument --temperature: must be a finite number > 0, got '0'",
        ),
        (["demo", "--cells", "rnn,elman"], "unknown cell 'elman'"),
        (["train", "--hidden", "many"], "argument --hidden: must be an integer >= 1, got 'many'"),
    ],
)
def test_bad_arguments_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_resume_refuses_a_changed_configuration(tmp_path, capsys):
    assert main(["train", *TINY, "--steps", "2", "--out", str(tmp_path)]) == 0
    assert main(["train", "--resume", str(tmp_path), "--steps", "4", "--hidden", "16"]) == 2
    assert "--hidden 16 differs from the checkpoint's 8" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--steps", "2"]) == 2
    assert "at step 2 already" in capsys.readouterr().err


def test_demo_verdict_never_reads_partly_learned_for_nan():
    from tinygrad_lstm.tooling.commands.demo import verdict

    nan, inf = float("nan"), float("inf")
    for loss, mse in ((nan, nan), (0.05, nan), (nan, 0.05), (inf, 0.1)):
        assert verdict(loss, mse, 1 / 6).startswith("diverged"), (loss, mse)
    assert verdict(0.08, 0.08, 1 / 6) == "partly learned"
    assert verdict(0.001, 0.001, 1 / 6) == "learned the sum"


def test_demo_with_a_diverging_lr_says_so(capsys):
    assert (
        main(
            [
                "demo",
                "--steps",
                "5",
                "--seq-len",
                "6",
                "--hidden",
                "4",
                "--batch",
                "4",
                "--lr",
                "1e30",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    table = out[out.index("cell ") : out.index("\n\n", out.index("cell "))].splitlines()[1:]
    assert len(table) == 3 and all("diverged" in row for row in table), table
    assert "partly learned" not in out


@pytest.mark.parametrize(
    "options, held_out, scores",
    [
        (
            ["--task", "sunspots", "--seq-len", "10"],
            "on the validation years 1917-1962: loss",
            {"loss", "mae", "rmse"},
        ),
        (
            ["--task", "sentiment", "--seq-len", "14", "--bidirectional"],
            "on a fresh batch: loss",
            {"loss", "accuracy"},
        ),
    ],
    ids=["sunspots", "sentiment-bidirectional"],
)
def test_train_runs_the_application_tasks(tmp_path, capsys, options, held_out, scores):
    argv = ["train", *options, "--hidden", "4", "--batch", "4", "--steps", "3"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert held_out in out and "baseline (" in out
    meta = checkpoint.read(tmp_path).meta
    assert set(meta["eval"]) == scores
    assert meta["model"]["pad_index"] == (0 if "sentiment" in options else None)
