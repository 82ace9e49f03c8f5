"""Checkpoints: a module's weights, an optimizer's state and JSON metadata in one ``.npz``.

A checkpoint lives in a directory, as ``<dir>/checkpoint.npz``: ``save("runs/mine", ...)``
creates ``runs/mine/`` and writes ``runs/mine/checkpoint.npz``. A path ending in ``.npz``
names the file itself. Layout of the archive (``np.savez``: stored, uncompressed members,
no pickle anywhere):

- ``model/<parameter name>``: one float array per entry of ``module.state_dict()``;
- ``optim/<i>/<buffer>``: the optimizer's per-parameter arrays (Adam's moments, ...);
- ``header.json``: UTF-8 JSON stored as a ``uint8`` array: the format tag, the name, shape
  and dtype of every array above, the optimizer's name, hyperparameters and counters, and
  the caller's ``meta`` (put the model configuration there, so the model can be rebuilt
  from the file alone).

Reading never runs code from the file (``allow_pickle=False``) and never trusts it: every
member's ``.npy`` header is parsed first, and an archive whose members are compressed, hold
Python objects, declare more (or fewer) bytes than they contain, or differ from the JSON
header is refused before any array is read (``checkpoint_archive``), so a small file
cannot make the reader allocate a large array. ``load`` also checks the declared names,
shapes and dtypes against the module, and the optimizer state against the optimizer
(``checkpoint_state``), before it reads the data and before it changes anything. Every such
failure is a ``CheckpointError``. Engine level: no op, no layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint_archive import FORMAT, HEADER, VERSION, Archive, open_archive, read_member
from .checkpoint_state import CheckpointError, check_model_specs, check_optimizer_state
from .module import Module, StateDictError
from .optim import Optimizer

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "CheckpointError",
    "load",
    "read",
    "read_meta",
    "resolve",
    "save",
]

CHECKPOINT_FILE = "checkpoint.npz"
TEMP_PREFIX = ".checkpoint-"


@dataclass
class Checkpoint:
    """What a checkpoint file holds: ``model`` (name -> array), ``optimizer`` (a state dict
    for ``Optimizer.load_state_dict``, or None) and the caller's ``meta``."""

    path: Path
    model: dict[str, np.ndarray]
    optimizer: dict[str, Any] | None
    meta: dict[str, Any]


def resolve(path: str | os.PathLike) -> Path:
    """The checkpoint file ``path`` names: ``path`` itself when it is an existing file or
    ends in ``.npz``, else ``path/checkpoint.npz`` (``path`` is a run directory)."""
    path = Path(path)
    if path.is_file() or (path.suffix == ".npz" and not path.is_dir()):
        return path
    return path / CHECKPOINT_FILE


# ---- writing -------------------------------------------------------------------------------
def _spec(array: np.ndarray) -> list:
    return [list(array.shape), array.dtype.str]


def _is_stale(temp: Path) -> bool:
    """A temporary file left by a save whose process is gone (killed mid-write)."""
    pid = temp.name[len(TEMP_PREFIX) :].split("-")[0]
    if not pid.isdigit():
        return True
    if os.name != "posix":  # no harmless liveness probe: leave it
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


def _remove_stale_temps(directory: Path) -> None:
    for temp in directory.glob(f"{TEMP_PREFIX}*.npz"):
        if _is_stale(temp):
            with contextlib.suppress(OSError):
                temp.unlink()


def _open_temp(directory: Path) -> tuple[int, Path]:
    """A new file next to the checkpoint, created with mode 0666 minus the umask (as any
    other output file; ``mkstemp`` would make it 0600), named after this process."""
    while True:
        temp = directory / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.npz"
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue


def save(
    path: str | os.PathLike,
    module: Module,
    optimizer: Optimizer | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``module``'s weights (and ``optimizer``'s state, and ``meta``) and return the
    file's path.

    ``path`` is a run directory (created if needed; the file is ``checkpoint.npz`` in it),
    or a file name ending in ``.npz``. ``meta`` must be JSON-serialisable. The file is
    written under a temporary name and renamed, so an interrupted save never leaves a
    half-written checkpoint; temporary files of saves that were killed are removed by the
    next save into the same directory. Failing to write raises ``OSError``.
    """
    path = Path(path)
    if path.is_file() and path.suffix != ".npz":
        raise CheckpointError(
            f"save {path}: is a file; give a run directory or a file name ending in .npz"
        )
    path = path if path.suffix == ".npz" and not path.is_dir() else path / CHECKPOINT_FILE
    try:
        meta_json = json.loads(json.dumps(meta or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"save {path}: meta must be JSON-serialisable ({exc})") from None
    arrays = {f"model/{k}": v for k, v in module.state_dict().items()}
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "meta": meta_json,
        "optimizer": None,
    }
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
        header["optimizer"] = {"name": sd["name"], "defaults": sd["defaults"], "scalars": scalars}
    header["arrays"] = {k: _spec(v) for k, v in arrays.items()}
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path.parent)
    fd, temp = _open_temp(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return path


# ---- reading -------------------------------------------------------------------------------
def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` of the checkpoint at ``path``, from a file whose structure is checked,
    without reading its arrays (to rebuild the model before ``load``)."""
    archive = open_archive(resolve(path))
    archive.zip.close()
    return archive.header["meta"]


def _read_arrays(archive: Archive) -> dict[str, np.ndarray]:
    return {key: read_member(archive, key) for key in archive.specs}


def _split(archive: Archive, arrays: dict[str, np.ndarray]) -> Checkpoint:
    model = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    opt = archive.header["optimizer"]
    optimizer = None
    if opt is not None:
        state = [dict(numbers) for numbers in opt["scalars"]]
        for key, array in arrays.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                state[int(index)][name] = array
        optimizer = {"name": opt["name"], "defaults": opt["defaults"], "state": state}
    return Checkpoint(
        path=archive.path, model=model, optimizer=optimizer, meta=archive.header["meta"]
    )


def read(path: str | os.PathLike) -> Checkpoint:
    """Read and check a checkpoint file without touching any module.

    ``path``: a run directory or the ``.npz`` file. Raises ``CheckpointError`` when the file
    is missing, damaged, not written by ``save``, holds object arrays, or its arrays differ
    from what its header lists. Memory used is bounded by the file's size.
    """
    archive = open_archive(resolve(path))
    with archive.zip:
        return _split(archive, _read_arrays(archive))


def load(path: str | os.PathLike, module: Module, optimizer: Optimizer | None = None) -> Checkpoint:
    """Read ``path`` and copy its weights into ``module`` (and its state into ``optimizer``).

    Everything is checked before anything changes, and the shapes the file declares are
    checked against the module before its data is read: a missing or unexpected weight, a
    shape or dtype that differs, or optimizer state that does not fit this optimizer or
    could not be stepped (a hyperparameter that is not a finite number in range, an entry
    without its counter, a non-finite buffer) raises ``CheckpointError`` and leaves both the
    module and the optimizer as they were. Returns the ``Checkpoint`` (its ``meta``
    included).
    """
    archive = open_archive(resolve(path))
    with archive.zip:
        where = str(archive.path)
        check_model_specs(archive.specs, module, where)
        if optimizer is not None:
            check_optimizer_state(archive.header["optimizer"], archive.specs, optimizer, where)
        ckpt = _split(archive, _read_arrays(archive))
    if optimizer is not None:
        for i, entry in enumerate(ckpt.optimizer["state"]):
            for key, value in entry.items():
                if isinstance(value, np.ndarray) and not np.all(np.isfinite(value)):
                    raise CheckpointError(
                        f"{where}: optimizer buffer {key!r} of parameter "
                        f"{i} holds NaN or inf; refused"
                    )
    before = module.state_dict()
    opt_before = None if optimizer is None else (dict(optimizer.defaults), optimizer.state)
    try:
        module.load_state_dict(ckpt.model)
        if optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
    except (StateDictError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # Checked above, so not expected; but should it happen, leave both as they were.
        module.load_state_dict(before)
        if opt_before is not None:
            optimizer.defaults.clear()
            optimizer.defaults.update(opt_before[0])
            optimizer.state = opt_before[1]
        raise CheckpointError(f"{where}: {exc}") from None
    return ckpt
