"""Checkpoints: exact round trips (weights, optimizer state, meta), and refusal, before any
change, of unsafe or inconsistent files."""

import io
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import checkpoint
from tinygrad_lstm.checkpoint import CheckpointError
from tinygrad_lstm.optim import Adam


class Tiny(tg.Module):
    """Two parameters, one in a sub-module, so names are dotted."""

    def __init__(self, n=3, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = tg.Parameter(rng.standard_normal((n, 2)).astype(np.float32))
        self.inner = tg.Module()
        self.inner.b = tg.Parameter(rng.standard_normal(n).astype(np.float32))


class OpenFile:
    """A pickle payload: unpickling it would create a file (it must never run)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _trained(seed=0):
    model = Tiny(seed=seed)
    opt = Adam(model.parameters(), lr=0.1)
    for step in range(3):
        for p in model.parameters():
            p.grad = np.full_like(p.data, 0.1 * (step + 1))
        opt.step()
    return model, opt


def _rewrite(path, drop=(), replace=None):
    """Copy the archive at ``path`` without the members ``drop``, replacing some bytes."""
    with zipfile.ZipFile(path) as src:
        members = {n: src.read(n) for n in src.namelist()}
    for name in drop:
        del members[name]
    members.update(replace or {})
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)


def _npy(array, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_round_trip_restores_weights_optimizer_and_meta(tmp_path):
    model, opt = _trained()
    meta = {"model": {"cell": "lstm", "hidden": 3}, "step": 3}
    written = checkpoint.save(tmp_path, model, opt, meta=meta)
    assert written == tmp_path / "checkpoint.npz"

    fresh = Tiny(seed=1)
    fresh_opt = Adam(fresh.parameters(), lr=0.5)
    ckpt = checkpoint.load(tmp_path, fresh, fresh_opt)
    assert ckpt.meta == meta
    for (name, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert b.dtype == np.float32
    assert fresh_opt.lr == 0.1
    for s, t in zip(opt.state, fresh_opt.state):
        assert s["step"] == t["step"] == 3
        np.testing.assert_array_equal(s["exp_avg_sq"], t["exp_avg_sq"])
    for m, o in ((model, opt), (fresh, fresh_opt)):  # both continue identically
        for p in m.parameters():
            p.grad = np.ones_like(p.data)
        o.step()
    np.testing.assert_array_equal(model.w.data, fresh.w.data)


def test_read_needs_no_module(tmp_path):
    model, _ = _trained()
    checkpoint.save(tmp_path / "c.npz", model, meta={"k": [1, 2]})
    ckpt = checkpoint.read(tmp_path / "c.npz")
    assert sorted(ckpt.model) == ["inner.b", "w"] and ckpt.optimizer is None
    assert ckpt.meta == {"k": [1, 2]}


def test_missing_file_and_bad_meta(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        checkpoint.read(tmp_path / "nothing.npz")
    with pytest.raises(CheckpointError, match="JSON-serialisable"):
        checkpoint.save(tmp_path, Tiny(), meta={"f": object()})
    assert not (tmp_path / "checkpoint.npz").exists()


def test_object_array_is_refused_without_unpickling(tmp_path):
    model, opt = _trained()
    path = checkpoint.save(tmp_path, model, opt)
    marker = tmp_path / "pwned"
    evil = np.array([OpenFile(marker)], dtype=object)
    _rewrite(path, replace={"model/w.npy": _npy(evil, allow_pickle=True)})
    with pytest.raises(CheckpointError, match="'model/w' holds Python objects.*refused"):
        checkpoint.load(path, Tiny())
    assert not marker.exists()


def test_plain_pickle_file_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(pickle.dumps({"w": OpenFile(marker)}))
    with pytest.raises(CheckpointError, match="not a checkpoint archive"):
        checkpoint.read(path)
    assert not marker.exists()


def test_archive_that_disagrees_with_its_header_is_refused(tmp_path):
    path = checkpoint.save(tmp_path, Tiny())
    _rewrite(path, drop=["model/inner.b.npy"])
    with pytest.raises(CheckpointError, match=r"missing arrays \['model/inner.b'\]"):
        checkpoint.read(path)

    path = checkpoint.save(tmp_path, Tiny())
    _rewrite(path, replace={"model/w.npy": _npy(np.zeros((4, 2), np.float32))})
    with pytest.raises(
        CheckpointError,
        match=r"'model/w' has shape \(4, 2\).*header says "
        r"\(3, 2\)",
    ):
        checkpoint.read(path)

    path = checkpoint.save(tmp_path, Tiny())
    _rewrite(path, drop=["header.json.npy"])
    with pytest.raises(CheckpointError, match="no header.json entry"):
        checkpoint.read(path)


def test_module_that_does_not_fit_is_left_unchanged(tmp_path):
    path = checkpoint.save(tmp_path, Tiny(n=3))
    other = Tiny(n=4, seed=5)
    before = other.state_dict()
    with pytest.raises(CheckpointError, match=r"w: expected shape \(4, 2\), got \(3, 2\)"):
        checkpoint.load(path, other)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[key])

    class Renamed(tg.Module):
        def __init__(self):
            super().__init__()
            self.w = tg.Parameter(np.zeros((3, 2), np.float32))
            self.c = tg.Parameter(np.zeros(3, np.float32))

    with pytest.raises(CheckpointError, match="missing keys: c"):
        checkpoint.load(path, Renamed())


def test_optimizer_that_does_not_fit_leaves_module_and_optimizer_unchanged(tmp_path):
    model, opt = _trained()
    path = checkpoint.save(tmp_path, model, opt)
    target = Tiny(seed=9)
    before = target.state_dict()
    wrong = Adam([target.w], lr=0.3)  # one parameter, the file has state for two
    with pytest.raises(CheckpointError, match="2 parameter entries, this optimizer holds 1"):
        checkpoint.load(path, target, wrong)
    np.testing.assert_array_equal(target.w.data, before["w"])
    assert wrong.state == [{}] and wrong.lr == 0.3
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        checkpoint.load(checkpoint.save(tmp_path / "plain", model), target, wrong)


def test_a_path_without_npz_is_a_run_directory(tmp_path):
    """The docs' ``checkpoint.save("runs/mine", ...)`` makes a directory holding
    checkpoint.npz, which load/read accept by the directory's name."""
    model, opt = _trained()
    written = checkpoint.save(tmp_path / "runs" / "mine", model, opt)
    assert written == tmp_path / "runs" / "mine" / "checkpoint.npz" and written.is_file()
    checkpoint.load(tmp_path / "runs" / "mine", Tiny(seed=4), Adam(Tiny().parameters()))
    assert checkpoint.save(tmp_path / "one.npz", model) == tmp_path / "one.npz"
    (tmp_path / "plain").write_text("not a directory")
    with pytest.raises(CheckpointError, match="is a file; give a run directory"):
        checkpoint.save(tmp_path / "plain", model)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoint_file_mode_follows_the_umask_like_other_outputs(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = checkpoint.save(tmp_path, Tiny())
        other = tmp_path / "metrics.csv"
        other.write_text("step\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(other.stat().st_mode)


def test_an_interrupted_save_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    model, opt = _trained()
    checkpoint.save(tmp_path, model, opt, meta={"step": 1})

    def interrupted(file, **arrays):
        file.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, Tiny(seed=5), meta={"step": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
    assert checkpoint.read(tmp_path).meta == {"step": 1}


def test_temporary_files_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    dead = tmp_path / f"{checkpoint.TEMP_PREFIX}999999999-0a1b2c3d.npz"  # no such process
    older = tmp_path / f"{checkpoint.TEMP_PREFIX}k2j3h4.npz"  # mkstemp's old names
    alive = tmp_path / f"{checkpoint.TEMP_PREFIX}{os.getpid()}-00000000.npz"
    for path in (dead, older, alive):
        path.write_bytes(b"PK half written")
    checkpoint.save(tmp_path, Tiny())
    assert not dead.exists() and not older.exists()
    assert alive.exists(), "a save still running in a live process must be left alone"
    assert checkpoint.read(tmp_path).model.keys() == {"w", "inner.b"}
