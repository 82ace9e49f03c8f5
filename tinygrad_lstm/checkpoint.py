"""Checkpoints: a module's weights, an optimizer's state and JSON metadata in one ``.npz``.

Layout of the archive (``np.savez``, no pickle anywhere):

- ``model/<parameter name>``: one float array per entry of ``module.state_dict()``;
- ``optim/<i>/<buffer>``: the optimizer's per-parameter arrays (Adam's moments, ...);
- ``header.json``: UTF-8 JSON stored as a ``uint8`` array: the format tag, the name, shape
  and dtype of every array above, the optimizer's hyperparameters and counters, and the
  caller's ``meta`` (put the model configuration there, so the model can be rebuilt from
  the file alone).

Reading uses ``np.load(allow_pickle=False)``: an archive holding object arrays (which would
need pickle, i.e. running code from the file) is refused, as is one whose arrays do not
match its header (missing, extra, wrong shape or dtype). Engine level: no op, no layer.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .module import Module, StateDictError

__all__ = ["CHECKPOINT_FILE", "Checkpoint", "CheckpointError", "load", "read", "save"]

FORMAT = "tinygrad-lstm-checkpoint"
VERSION = 1
CHECKPOINT_FILE = "checkpoint.npz"
_HEADER = "header.json"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe or does not fit the module."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds: ``model`` (name -> array), ``optimizer`` (a state dict
    for ``Optimizer.load_state_dict``, or None) and the caller's ``meta``."""

    path: Path
    model: dict[str, np.ndarray]
    optimizer: dict[str, Any] | None
    meta: dict[str, Any]


def resolve(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/checkpoint.npz`` when ``path`` is a directory."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path


def _spec(array: np.ndarray) -> list:
    return [list(array.shape), array.dtype.str]


def save(path: str | os.PathLike, module: Module, optimizer=None,
         meta: dict[str, Any] | None = None) -> Path:
    """Write ``module``'s weights (and ``optimizer``'s state, and ``meta``) to ``path``.

    ``path`` may be a directory (the file is ``checkpoint.npz`` inside it). ``meta`` must be
    JSON-serialisable. The file is written to a temporary name and renamed, so an
    interrupted save never leaves a half-written checkpoint. Returns the file's path.
    """
    path = resolve(path)
    try:
        meta_json = json.loads(json.dumps(meta or {}))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"save {path}: meta must be JSON-serialisable ({exc})") from None
    arrays = {f"model/{k}": v for k, v in module.state_dict().items()}
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "meta": meta_json,
                              "optimizer": None}
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars = []
        for i, entry in enumerate(sd["state"]):
            numbers = {}
            for key, value in entry.items():
                if isinstance(value, np.ndarray):
                    arrays[f"optim/{i}/{key}"] = value
                else:
                    numbers[key] = value
            scalars.append(numbers)
        header["optimizer"] = {"name": sd["name"], "defaults": sd["defaults"],
                               "scalars": scalars}
    header["arrays"] = {k: _spec(v) for k, v in arrays.items()}
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checkpoint-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _read_array(archive, key: str, where: Path) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise CheckpointError(f"{where}: array {key!r} holds Python objects, which would "
                                  "need pickle (running code from the file) to load; refused"
                                  ) from None
        raise CheckpointError(f"{where}: array {key!r} is unreadable ({exc})") from None


def read(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint file without touching any module.

    Raises ``CheckpointError`` when the file is missing, is not an ``.npz`` written by
    ``save``, holds object arrays, or its arrays differ from what its header lists.
    """
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a checkpoint archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: holds a single array, not a checkpoint archive")
    with archive:
        names = set(archive.files)
        if _HEADER not in names:
            raise CheckpointError(f"{path}: no {_HEADER} entry; not written by "
                                  "tinygrad_lstm.checkpoint.save")
        raw = _read_array(archive, _HEADER, path)
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: {_HEADER} is not valid JSON ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a {FORMAT} file")
        if header.get("version") != VERSION:
            raise CheckpointError(f"{path}: format version {header.get('version')} is not "
                                  f"supported (this library reads version {VERSION})")
        listed = header.get("arrays", {})
        missing = sorted(set(listed) - names)
        extra = sorted(names - set(listed) - {_HEADER})
        if missing or extra:
            raise CheckpointError(f"{path}: the archive does not match its header: missing "
                                  f"arrays {missing}, unexpected arrays {extra}")
        arrays = {}
        for key, (shape, dtype) in listed.items():
            array = _read_array(archive, key, path)
            if list(array.shape) != shape or array.dtype.str != dtype:
                raise CheckpointError(f"{path}: array {key!r} has shape {array.shape} and "
                                      f"dtype {array.dtype}, the header says {tuple(shape)} "
                                      f"and {np.dtype(dtype)}")
            arrays[key] = array
    model = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    return Checkpoint(path=path, model=model, optimizer=_optimizer_state(header, arrays, path),
                      meta=header.get("meta") or {})


def _optimizer_state(header: dict, arrays: dict, path: Path) -> dict | None:
    opt = header.get("optimizer")
    if opt is None:
        return None
    state = [dict(numbers) for numbers in opt["scalars"]]
    for key, array in arrays.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            if not index.isdigit() or int(index) >= len(state):
                raise CheckpointError(f"{path}: optimizer array {key!r} names no parameter")
            state[int(index)][name] = array
    return {"name": opt["name"], "defaults": opt["defaults"], "state": state}


def load(path: str | os.PathLike, module: Module, optimizer=None) -> Checkpoint:
    """Read ``path`` and copy its weights into ``module`` (and its state into ``optimizer``).

    Everything is checked before anything changes: a missing or unexpected weight, a shape
    or dtype that differs, or optimizer state that does not fit raises ``CheckpointError``
    and leaves both the module and the optimizer as they were. Returns the ``Checkpoint``
    (its ``meta`` included).
    """
    ckpt = read(path)
    if optimizer is not None and ckpt.optimizer is None:
        raise CheckpointError(f"{ckpt.path}: holds no optimizer state to load")
    before = module.state_dict() if optimizer is not None else None
    try:
        module.load_state_dict(ckpt.model)
    except StateDictError as exc:
        raise CheckpointError(f"{ckpt.path}: {exc}") from None
    if optimizer is not None:
        try:
            optimizer.load_state_dict(ckpt.optimizer)
        except ValueError as exc:
            module.load_state_dict(before)   # leave both as they were
            raise CheckpointError(f"{ckpt.path}: {exc}") from None
    return ckpt
