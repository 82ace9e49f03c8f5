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
header is refused before any array is read, so a small file cannot make the reader
allocate a large array. ``load`` also checks the declared names, shapes and dtypes against
the module, and the optimizer state against the optimizer (``checkpoint_state``), before it
reads the data and before it changes anything. Every such failure is a ``CheckpointError``.
Engine level: no op, no layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint_state import (
    CheckpointError,
    check_header,
    check_model_specs,
    check_optimizer_state,
)
from .module import Module, StateDictError

__all__ = ["CHECKPOINT_FILE", "Checkpoint", "CheckpointError", "load", "read", "read_meta",
           "resolve", "save"]

FORMAT = "tinygrad-lstm-checkpoint"
VERSION = 1
CHECKPOINT_FILE = "checkpoint.npz"
TEMP_PREFIX = ".checkpoint-"
_HEADER = "header.json"
_MAX_NPY_HEADER = 10_000          # numpy's own default limit for a safe .npy header
_MAX_JSON_HEADER = 64 * 1024 * 1024


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
    pid = temp.name[len(TEMP_PREFIX):].split("-")[0]
    if not pid.isdigit():
        return True
    if os.name != "posix":       # no harmless liveness probe: leave it
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:              # alive, owned by someone else
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


def save(path: str | os.PathLike, module: Module, optimizer=None,
         meta: dict[str, Any] | None = None) -> Path:
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
        raise CheckpointError(f"save {path}: is a file; give a run directory or a file name "
                              "ending in .npz")
    path = path if path.suffix == ".npz" and not path.is_dir() else path / CHECKPOINT_FILE
    try:
        meta_json = json.loads(json.dumps(meta or {}, allow_nan=False))
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
@dataclass
class _Archive:
    """An opened checkpoint whose structure is checked and whose data is not read yet."""

    path: Path
    zip: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo]   # array key -> its member
    header: dict[str, Any]
    specs: dict[str, tuple[tuple[int, ...], np.dtype]]


def _npy_spec(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str):
    """(shape, dtype) from a member's ``.npy`` header, checked against the member's size."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"{where}: member {info.filename!r} is compressed; checkpoints "
                              "store arrays uncompressed (refused: its size cannot be checked)")
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(f, max_header_size=_MAX_NPY_HEADER)
        offset = f.tell()
    if dtype.hasobject:
        raise CheckpointError(f"{where}: array {info.filename[:-4]!r} holds Python objects, "
                              "which would need pickle (running code from the file) to load; "
                              "refused")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if offset + declared != info.file_size:
        raise CheckpointError(f"{where}: array {info.filename[:-4]!r} declares shape {shape} "
                              f"and dtype {dtype} ({declared} bytes) but its member holds "
                              f"{info.file_size - offset} bytes of data")
    return tuple(shape), dtype


def _read_member(archive: _Archive, key: str) -> np.ndarray:
    try:
        with archive.zip.open(archive.members[key]) as f:
            return np.lib.format.read_array(f, allow_pickle=False,
                                            max_header_size=_MAX_NPY_HEADER)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any damage is a refused file
        raise CheckpointError(f"{archive.path}: array {key!r} is unreadable "
                              f"({type(exc).__name__}: {exc})") from None


def _parse_header(archive: _Archive, where: str) -> dict:
    shape, dtype = archive.specs[_HEADER]
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > _MAX_JSON_HEADER:
        raise CheckpointError(f"{where}: {_HEADER} must be a 1-d uint8 array of at most "
                              f"{_MAX_JSON_HEADER} bytes, got shape {shape} and dtype {dtype}")
    raw = _read_member(archive, _HEADER)
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {_HEADER} is not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{where}: {_HEADER} is nested too deeply to be a checkpoint "
                              "header") from None


def _open(path: str | os.PathLike) -> _Archive:
    """Open ``path`` and check its structure; no array data is read but the JSON header."""
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # noqa: BLE001 - empty, truncated, not a zip: all refused
        raise CheckpointError(f"{where}: not a checkpoint archive ({type(exc).__name__}: "
                              f"{exc})") from None
    try:
        members, specs = {}, {}
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if key is None or key in members:
                raise CheckpointError(f"{where}: unexpected member {info.filename!r}; not "
                                      "written by tinygrad_lstm.checkpoint.save")
            members[key] = info
            specs[key] = _npy_spec(zf, info, where)
        if _HEADER not in members:
            raise CheckpointError(f"{where}: no {_HEADER} entry; not written by "
                                  "tinygrad_lstm.checkpoint.save")
        archive = _Archive(path, zf, members, {}, specs)
        archive.header = check_header(_parse_header(archive, where), FORMAT, VERSION, where)
        listed = archive.header["arrays"]
        missing = sorted(set(listed) - set(members))
        extra = sorted(set(members) - set(listed) - {_HEADER})
        if missing or extra:
            raise CheckpointError(f"{where}: the archive does not match its header: missing "
                                  f"arrays {missing}, unexpected arrays {extra}")
        for key, (shape, dtype) in listed.items():
            if specs[key] != (shape, dtype):
                raise CheckpointError(f"{where}: array {key!r} has shape {specs[key][0]} and "
                                      f"dtype {specs[key][1]}, the header says {shape} and "
                                      f"{dtype}")
        del specs[_HEADER]
        return archive
    except CheckpointError:
        zf.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged member (bad CRC, truncated, ...)
        zf.close()
        raise CheckpointError(f"{where}: damaged checkpoint archive ({type(exc).__name__}: "
                              f"{exc})") from None


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` of the checkpoint at ``path``, from a file whose structure is checked,
    without reading its arrays (to rebuild the model before ``load``)."""
    archive = _open(path)
    archive.zip.close()
    return archive.header["meta"]


def _read_arrays(archive: _Archive) -> dict[str, np.ndarray]:
    return {key: _read_member(archive, key) for key in archive.specs}


def _split(archive: _Archive, arrays: dict[str, np.ndarray]) -> Checkpoint:
    model = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    opt = archive.header["optimizer"]
    optimizer = None
    if opt is not None:
        state = [dict(numbers) for numbers in opt["scalars"]]
        for key, array in arrays.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                state[int(index)][name] = array
        optimizer = {"name": opt["name"], "defaults": opt["defaults"], "state": state}
    return Checkpoint(path=archive.path, model=model, optimizer=optimizer,
                      meta=archive.header["meta"])


def read(path: str | os.PathLike) -> Checkpoint:
    """Read and check a checkpoint file without touching any module.

    ``path``: a run directory or the ``.npz`` file. Raises ``CheckpointError`` when the file
    is missing, damaged, not written by ``save``, holds object arrays, or its arrays differ
    from what its header lists. Memory used is bounded by the file's size.
    """
    archive = _open(path)
    with archive.zip:
        return _split(archive, _read_arrays(archive))


def load(path: str | os.PathLike, module: Module, optimizer=None) -> Checkpoint:
    """Read ``path`` and copy its weights into ``module`` (and its state into ``optimizer``).

    Everything is checked before anything changes, and the shapes the file declares are
    checked against the module before its data is read: a missing or unexpected weight, a
    shape or dtype that differs, or optimizer state that does not fit this optimizer or
    could not be stepped (a hyperparameter that is not a finite number in range, an entry
    without its counter, a non-finite buffer) raises ``CheckpointError`` and leaves both the
    module and the optimizer as they were. Returns the ``Checkpoint`` (its ``meta``
    included).
    """
    archive = _open(path)
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
                    raise CheckpointError(f"{where}: optimizer buffer {key!r} of parameter "
                                          f"{i} holds NaN or inf; refused")
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
