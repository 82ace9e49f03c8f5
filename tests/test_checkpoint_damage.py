"""Damaged, hostile and inconsistent checkpoint files: every one is a ``CheckpointError``,
raised before the module or the optimizer changes, and reading costs no more memory than
the file's size."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest

import tinygrad_lstm as tg
from tinygrad_lstm import checkpoint
from tinygrad_lstm.checkpoint import CheckpointError
from tinygrad_lstm.optim import SGD, Adam


class Tiny(tg.Module):
    def __init__(self, n=3, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = tg.Parameter(rng.standard_normal((n, 2)).astype(np.float32))
        self.b = tg.Parameter(rng.standard_normal(n).astype(np.float32))


def _stepped(model, opt, steps=2):
    for step in range(steps):
        for p in model.parameters():
            p.grad = np.full_like(p.data, 0.1 * (step + 1))
        opt.step()
    return model, opt


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _header(path):
    raw = np.load(io.BytesIO(_members(path)["header.json.npy"]))
    return json.loads(raw.tobytes().decode())


def _with_header(path, header_text: str):
    members = _members(path)
    members["header.json.npy"] = _npy(np.frombuffer(header_text.encode(), dtype=np.uint8))
    _write(path, members)


def _edit_header(path, edit):
    header = _header(path)
    edit(header)
    _with_header(path, json.dumps(header))


def _snapshot(model, opt):
    return model.state_dict(), opt.state_dict()


def _assert_unchanged(model, opt, before):
    weights, opt_state = before
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights[key], err_msg=f"weight {key} changed")
    now = opt.state_dict()
    assert now["defaults"] == opt_state["defaults"], "optimizer hyperparameters changed"
    assert len(now["state"]) == len(opt_state["state"])
    for got, want in zip(now["state"], opt_state["state"]):
        assert got.keys() == want.keys(), "optimizer state changed"
        for key in got:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"optimizer {key}")


@pytest.fixture
def saved(tmp_path):
    """A checkpoint of a stepped Tiny + Adam, and a different stepped pair to load into."""
    path = checkpoint.save(tmp_path, *_stepped(*_pair(seed=0)))
    target = _stepped(*_pair(seed=7), steps=1)
    return path, target


def _pair(seed):
    model = Tiny(seed=seed)
    return model, Adam(model.parameters(), lr=0.1)


def _set_entry(key, value):
    def edit(h):
        h["optimizer"]["scalars"][0][key] = value

    return edit


def _drop_step(h):
    del h["optimizer"]["scalars"][0]["step"]


def _set_default(key, value):
    def edit(h):
        h["optimizer"]["defaults"][key] = value

    return edit


def _set(field, value):
    def edit(h):
        h[field] = value

    return edit


OPTIMIZER_EDITS = {
    "defaults-a-list": lambda h: h["optimizer"].update(defaults=[]),
    "lr-a-string": _set_default("lr", "abc"),
    "lr-negative": _set_default("lr", -0.1),
    "lr-nan": _set_default("lr", float("nan")),
    "lr-inf": _set_default("lr", float("inf")),
    "lr-a-bool": _set_default("lr", True),
    "betas-too-short": _set_default("betas", [0.9]),
    "beta-of-one": _set_default("betas", [0.9, 1.0]),
    "unknown-hyperparameter": _set_default("momentum", 0.9),
    "entry-without-step": _drop_step,
    "step-zero": _set_entry("step", 0),
    "step-a-string": _set_entry("step", "3"),
    "step-a-float": _set_entry("step", 1.5),
    "scalars-a-dict": lambda h: h["optimizer"].update(scalars={}),
    "too-few-entries": lambda h: h["optimizer"]["scalars"].pop(),
    "other-optimizer": lambda h: h["optimizer"].update(name="sgd"),
    "optimizer-a-string": _set("optimizer", "adam"),
}


@pytest.mark.parametrize("edit", OPTIMIZER_EDITS.values(), ids=OPTIMIZER_EDITS.keys())
def test_bad_optimizer_state_is_refused_at_load_and_changes_nothing(saved, edit):
    path, (model, opt) = saved
    _edit_header(path, edit)
    before = _snapshot(model, opt)
    with pytest.raises(CheckpointError):
        checkpoint.load(path, model, opt)
    _assert_unchanged(model, opt, before)
    opt.step()  # and the optimizer still works


def test_non_finite_optimizer_buffer_is_refused(saved):
    path, (model, opt) = saved
    members = _members(path)
    bad = np.load(io.BytesIO(members["optim/0/exp_avg.npy"]))
    bad[0, 0] = np.nan
    members["optim/0/exp_avg.npy"] = _npy(bad)
    _write(path, members)
    before = _snapshot(model, opt)
    with pytest.raises(CheckpointError, match="'exp_avg' of parameter 0 holds NaN"):
        checkpoint.load(path, model, opt)
    _assert_unchanged(model, opt, before)


def test_missing_buffer_of_a_stepped_entry_is_refused(saved):
    path, (model, opt) = saved
    members = _members(path)
    del members["optim/1/exp_avg_sq.npy"]
    _write(path, members)
    _edit_header(path, lambda h: h["arrays"].pop("optim/1/exp_avg_sq"))
    before = _snapshot(model, opt)
    with pytest.raises(
        CheckpointError,
        match=r"parameter 1 holds \['step'\] and buffers "
        r"\['exp_avg'\]",
    ):
        checkpoint.load(path, model, opt)
    _assert_unchanged(model, opt, before)


def test_sgd_state_schema_follows_its_momentum(tmp_path):
    model = Tiny()
    plain = SGD(model.parameters(), lr=0.1)
    path = checkpoint.save(tmp_path, *_stepped(model, plain))
    checkpoint.load(path, Tiny(seed=3), SGD(Tiny(seed=3).parameters(), lr=0.5))
    _edit_header(path, lambda h: h["optimizer"]["scalars"][0].update(step=4))
    with pytest.raises(CheckpointError, match="a stepped SGD keeps"):
        checkpoint.load(path, Tiny(seed=3), SGD(Tiny(seed=3).parameters(), lr=0.5))


HEADER_EDITS = {
    "arrays-a-list": _set("arrays", []),
    "spec-without-dtype": lambda h: h["arrays"].update({"model/w": [[3, 2]]}),
    "spec-bad-dtype": lambda h: h["arrays"].update({"model/w": [[3, 2], "no-such-type"]}),
    "spec-negative-shape": lambda h: h["arrays"].update({"model/w": [[-3, 2], "<f4"]}),
    "spec-other-shape": lambda h: h["arrays"].update({"model/w": [[2, 3], "<f4"]}),
    "meta-a-list": _set("meta", [1, 2]),
    "format-missing": lambda h: h.pop("format"),
    "version-2": _set("version", 2),
    "counter-nan": _set_entry("step", float("nan")),
    "optim-array-index-out-of-range": lambda h: h["arrays"].update(
        {"optim/9/exp_avg": h["arrays"].pop("optim/0/exp_avg")}
    ),
}


@pytest.mark.parametrize("edit", HEADER_EDITS.values(), ids=HEADER_EDITS.keys())
def test_malformed_header_fields_are_a_checkpoint_error(saved, edit):
    path, (model, opt) = saved
    _edit_header(path, edit)
    before = _snapshot(model, opt)
    with pytest.raises(CheckpointError):
        checkpoint.read(path)
    with pytest.raises(CheckpointError):
        checkpoint.load(path, model, opt)
    _assert_unchanged(model, opt, before)


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"format": ', "\xff"],
    ids=["100k-deep", "truncated", "not-utf8"],
)
def test_unparseable_json_header_is_a_checkpoint_error(saved, text):
    path, _ = saved
    _with_header(path, text)
    with pytest.raises(CheckpointError, match="header.json"):
        checkpoint.read(path)


def test_zero_byte_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a checkpoint archive"):
        checkpoint.read(empty)
    good = checkpoint.save(tmp_path, Tiny())
    data = good.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        good.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            checkpoint.read(good)


def test_every_flipped_byte_is_refused_or_harmless(tmp_path):
    """A flip in array data fails the zip CRC; in a header, a parse or a check; a flip in a
    field nothing reads (timestamps, ...) changes nothing. Never any other exception."""
    model, opt = _stepped(*_pair(seed=0))
    path = checkpoint.save(tmp_path / "ref.npz", model, opt)
    reference = checkpoint.read(path)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.npz"
    outcomes = {"refused": 0, "harmless": 0}
    for at in range(0, len(data), 7):  # every 7th byte: headers, data, directory
        flipped = bytearray(data)
        flipped[at] ^= 0x5A
        damaged.write_bytes(bytes(flipped))
        try:
            got = checkpoint.read(damaged)
        except CheckpointError:
            outcomes["refused"] += 1
            continue
        for key, value in reference.model.items():
            np.testing.assert_array_equal(got.model[key], value, err_msg=f"byte {at}")
        assert got.meta == reference.meta
        outcomes["harmless"] += 1
    assert outcomes["refused"] > len(data) // 14, outcomes


def test_a_small_file_declaring_a_huge_array_allocates_nothing_large(tmp_path):
    """The .npy header of model/w says 300 MB; the member holds 0.3 MB. Refused from the
    headers alone: read() must not allocate the declared size first."""
    path = checkpoint.save(tmp_path, Tiny())
    members = _members(path)
    small = np.zeros(75_000, np.float32)  # 0.3 MB of real data
    liar = _npy(small).replace(b"(75000,)", b"(75000000,)", 1)
    members["model/w.npy"] = liar
    _write(path, members)
    _edit_header(path, lambda h: h["arrays"].update({"model/w": [[75_000_000], "<f4"]}))
    tracemalloc.start()
    try:
        with pytest.raises(
            CheckpointError,
            match=r"declares shape \(75000000,\).*holds "
            r"300\d{3} bytes",
        ):
            checkpoint.read(path)
        with pytest.raises(CheckpointError):
            checkpoint.load(path, Tiny())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"reading allocated {peak / 1e6:.0f} MB"


def test_compressed_members_are_refused(tmp_path):
    """A deflated member could expand to any size (a zip bomb); save never compresses."""
    path = checkpoint.save(tmp_path, Tiny())
    _write(path, _members(path), compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="is compressed"):
        checkpoint.read(path)


def test_declared_shapes_are_checked_against_the_module_before_the_data_is_read(
    tmp_path, monkeypatch
):
    path = checkpoint.save(tmp_path, Tiny(n=3))
    read_member = checkpoint.read_member
    read_keys = []
    monkeypatch.setattr(
        checkpoint,
        "read_member",
        lambda archive, key: read_keys.append(key) or read_member(archive, key),
    )
    with pytest.raises(CheckpointError, match=r"w: expected shape \(5, 2\), got \(3, 2\)"):
        checkpoint.load(path, Tiny(n=5))
    assert read_keys == [], f"array data was read before the shapes were checked: {read_keys}"
    checkpoint.load(path, Tiny(n=3))
    assert sorted(read_keys) == ["model/b", "model/w"], "the check above must see the reads"
