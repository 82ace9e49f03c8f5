"""``tinygrad-lstm train`` never loses a run: the output directory is checked before the
first step, an existing run is not overwritten by accident, checkpoints are saved every
``--save-every`` steps and at every interruption, only ever at a step boundary (so resuming
is bit-exact), a diverging loss stops the run keeping the last finite state, and every
failure is one line."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from tinygrad_lstm.tooling.cli import main
from tinygrad_lstm.tooling.commands import train as train_command

from tinygrad_lstm import checkpoint
from tinygrad_lstm.optim import Adam
from tinygrad_lstm.training import Trainer

TINY = ["--hidden", "6", "--seq-len", "6", "--batch", "3", "--task", "adding"]


def _train(out, *extra):
    return main(["train", *TINY, "--out", str(out), *extra])


def _one_error_line(capsys) -> str:
    err = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("error:") or "Traceback" in line
    ]
    assert len(err) == 1, err
    return err[0]


def _same_state(a, b):
    """Two checkpoints hold identical weights and optimizer state, bit for bit."""
    a, b = checkpoint.read(a), checkpoint.read(b)
    assert a.meta["step"] == b.meta["step"]
    for key in a.model:
        np.testing.assert_array_equal(a.model[key], b.model[key], err_msg=key)
    for sa, sb in zip(a.optimizer["state"], b.optimizer["state"]):
        assert sa.keys() == sb.keys()
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Uninterrupted runs of 2, 3 and 6 steps, the reference for every resume."""
    root = tmp_path_factory.mktemp("straight")
    for steps in (2, 3, 6):
        assert _train(root / str(steps), "--steps", str(steps)) == 0
    return root


# ---- the output directory -------------------------------------------------------------
def test_unwritable_out_is_refused_before_the_first_step(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(Trainer, "step", lambda *a: pytest.fail("trained before the check"))
    assert _train(blocker / "run", "--steps", "3") == 2
    assert "cannot write to --out" in _one_error_line(capsys)
    assert _train(blocker, "--steps", "3") == 2
    assert f"--out {blocker} is a file, not a directory" in _one_error_line(capsys)


def test_an_existing_run_is_refused_unless_resumed_or_forced(tmp_path, straight, capsys):
    out = tmp_path / "run"
    assert _train(out, "--steps", "3") == 0
    capsys.readouterr()
    assert _train(out, "--steps", "2") == 2
    assert "holds a run already; pass --resume" in _one_error_line(capsys)
    assert checkpoint.read(out).meta["step"] == 3, "the refused run overwrote the old one"
    assert main(["train", "--resume", str(out), "--out", str(out), "--steps", "6"]) == 0
    _same_state(out, straight / "6")
    assert _train(out, "--steps", "2", "--force") == 0
    _same_state(out, straight / "2")
    assert [r.split(",")[0] for r in (out / "metrics.csv").read_text().split()[1:]] == ["1", "2"]


def test_resume_takes_the_checkpoint_file_too(tmp_path, straight):
    out = tmp_path / "run"
    assert _train(out, "--steps", "3") == 0
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--steps", "6"]) == 0
    _same_state(out, straight / "6")


def test_periodic_saves_and_a_full_disk(tmp_path, monkeypatch, capsys):
    saved_steps = []
    real_save = checkpoint.save

    def recording_save(path, module, optimizer=None, meta=None):
        saved_steps.append(meta["step"])
        return real_save(path, module, optimizer, meta)

    monkeypatch.setattr(checkpoint, "save", recording_save)
    assert _train(tmp_path / "a", "--steps", "5", "--save-every", "2") == 0
    assert saved_steps == [2, 4, 5]

    def full_disk(path, module, optimizer=None, meta=None):
        if meta["step"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return recording_save(path, module, optimizer, meta)

    monkeypatch.setattr(checkpoint, "save", full_disk)
    assert _train(tmp_path / "b", "--steps", "5", "--save-every", "2") == 2
    line = _one_error_line(capsys)
    assert "could not save step 4" in line and "No space left on device" in line
    assert "the last checkpoint there is step 2" in line
    assert checkpoint.read(tmp_path / "b").meta["step"] == 2


def test_every_output_file_has_the_same_mode(tmp_path):
    old = os.umask(0o022)
    try:
        assert _train(tmp_path, "--steps", "2") == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_damaged_metrics_is_one_line(tmp_path, capsys):
    assert _train(tmp_path, "--steps", "2") == 0
    (tmp_path / "metrics.csv").write_text("step,loss,grad_norm,seconds\n1,0.5,x,0.1\n")
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path), "--steps", "4"]) == 2
    assert "metrics.csv is damaged" in _one_error_line(capsys)


# ---- interruptions: the checkpoint is always a step boundary ---------------------------
def _interrupt_inside_step(monkeypatch, call: int):
    """Ctrl-C from inside Adam's update of one parameter: the ``call``-th update overall,
    after some parameters of that step were updated and others not."""
    calls = {"n": 0}
    real_update = Adam._update

    def update(self, p, grad, state):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        real_update(self, p, grad, state)

    monkeypatch.setattr(Adam, "_update", update)


N_PARAMS = 6  # LSTM weight_ih, weight_hh, bias_ih, bias_hh; head weight and bias


def test_ctrl_c_inside_optimizer_step_saves_the_last_step_and_resumes_bit_exactly(
    tmp_path, straight, monkeypatch, capsys
):
    out = tmp_path / "run"
    _interrupt_inside_step(monkeypatch, call=3 * N_PARAMS + 2)  # inside step 4
    assert _train(out, "--steps", "6") == 130
    _same_state(out, straight / "3")
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--steps", "6"]) == 0
    _same_state(out, straight / "6")
    # metrics.csv: the same steps, losses and gradient norms (the seconds differ)
    rows = [r.split(",")[:3] for r in (out / "metrics.csv").read_text().split()]
    want = [r.split(",")[:3] for r in (straight / "6" / "metrics.csv").read_text().split()]
    assert rows == want


def test_ctrl_c_in_the_first_step_of_a_resume_without_metrics(tmp_path, straight, monkeypatch):
    out = tmp_path / "run"
    assert _train(out, "--steps", "3") == 0
    (out / "metrics.csv").unlink()
    _interrupt_inside_step(monkeypatch, call=2)
    assert main(["train", "--resume", str(out), "--steps", "6"]) == 130
    _same_state(out, straight / "3")  # still step 3, not "step 0" with new weights
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--steps", "6"]) == 0
    _same_state(out, straight / "6")


def test_an_error_mid_run_keeps_every_completed_step(tmp_path, straight, monkeypatch):
    real_step = Trainer.step

    def failing(self, x, y, state=None):
        if self.step_count == 3:
            raise RuntimeError("disk controller on fire")
        return real_step(self, x, y, state)

    monkeypatch.setattr(Trainer, "step", failing)
    with pytest.raises(RuntimeError, match="on fire"):
        _train(tmp_path, "--steps", "6", "--save-every", "0")
    _same_state(tmp_path, straight / "3")


# ---- divergence ---------------------------------------------------------------------------
def test_a_nan_loss_stops_the_run_and_keeps_the_last_finite_state(
    tmp_path, straight, monkeypatch, capsys
):
    real_step = Trainer.step

    def diverging(self, x, y, state=None):
        result = real_step(self, x, y, state)
        if self.step_count == 3:  # the third step's update blew up
            for p in self.optimizer.params:
                p.data[...] = np.nan
            result.loss = float("nan")
        return result

    monkeypatch.setattr(Trainer, "step", diverging)
    assert _train(tmp_path, "--steps", "6") == 2
    line = _one_error_line(capsys)
    assert "the loss became nan at step 3" in line and "last finite state, step 2" in line
    _same_state(tmp_path, straight / "2")


def test_a_real_divergence_exits_non_zero_without_nan_weights(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--hidden",
                "4",
                "--seq-len",
                "4",
                "--batch",
                "4",
                "--steps",
                "6",
                "--optimizer",
                "sgd",
                "--lr",
                "1e30",
                "--clip",
                "0",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "stopped" in _one_error_line(capsys)
    ckpt = checkpoint.read(tmp_path)
    assert all(np.isfinite(v).all() for v in ckpt.model.values())


# ---- bad flags and files: one line, no traceback -----------------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
        (["train", "--lr", "inf"], "argument --lr: must be a finite number > 0, got 'inf'"),
        (["train", "--lr", "-0.1"], "argument --lr: must be a finite number > 0"),
        (["train", "--lr", "0"], "argument --lr: must be a finite number > 0"),
        (["train", "--clip", "nan"], "argument --clip: must be a finite number >= 0, got 'nan'"),
        (["train", "--clip", "-1"], "argument --clip: must be a finite number >= 0"),
        (["train", "--seed", "-1"], "argument --seed: must be an integer in [0, "),
        (["train", "--bptt", "0"], "argument --bptt: must be an integer >= 1, got 0"),
        (["train", "--save-every", "-5"], "argument --save-every: must be an integer >= 0"),
        (["demo", "--lr", "inf"], "argument --lr: must be a finite number > 0"),
        (["demo", "--seed", "-1"], "argument --seed: must be an integer in [0, "),
        (["demo", "--seq-len", "1"], "argument --seq-len: must be an integer >= 2, got 1"),
        (["demo", "--cells", ","], "--cells ',' names no cell"),
        (["sample", "--checkpoint", "x", "--temperature", "nan"], "argument --temperature"),
        (["sample", "--checkpoint", "x", "--length", "0"], "argument --length"),
        (["sample", "--checkpoint", "x", "--seed", "-1"], "argument --seed"),
        (["train", "--hidden", "99999999999"], "the model holds 4e+22 parameters"),
        (["demo", "--hidden", "99999999999"], "more than the"),
    ],
)
def test_bad_flags_are_one_line_naming_the_flag(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert message in line, line


def _damage(path, how):
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "flipped":
        path.write_bytes(
            data[: len(data) // 2]
            + bytes([data[len(data) // 2] ^ 0xFF])
            + data[len(data) // 2 + 1 :]
        )
    else:
        path.write_bytes(data[: len(data) - 100])


@pytest.mark.parametrize("how", ["empty", "flipped", "truncated"])
def test_a_damaged_checkpoint_is_one_line_for_resume_and_sample(tmp_path, how):
    assert (
        main(
            [
                "train",
                "--task",
                "text",
                "--hidden",
                "4",
                "--seq-len",
                "6",
                "--batch",
                "2",
                "--steps",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    _damage(tmp_path / "checkpoint.npz", how)
    for argv in (
        ["train", "--resume", str(tmp_path), "--steps", "3"],
        ["sample", "--checkpoint", str(tmp_path)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "tinygrad_lstm", *argv],
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("error: "), done.stderr


def test_resume_refuses_a_hand_edited_configuration(tmp_path, capsys, monkeypatch):
    assert _train(tmp_path, "--steps", "1") == 0
    ckpt = checkpoint.read(tmp_path)
    for field, value in (("lr", -1.0), ("clip", "abc"), ("hidden", "6"), ("seed", -1)):
        config = {**ckpt.meta["train"], field: value}
        model, opt = _rebuild(ckpt)
        checkpoint.save(tmp_path, model, opt, meta={**ckpt.meta, "train": config})
        capsys.readouterr()
        assert main(["train", "--resume", str(tmp_path), "--steps", "3"]) == 2
        assert f"--{field}" in _one_error_line(capsys)


def _rebuild(ckpt):
    _, model, _, opt = train_command._build(ckpt.meta["train"])
    checkpoint.load(ckpt.path, model, opt)
    return model, opt
