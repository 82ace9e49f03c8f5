"""The reading side of a checkpoint archive: its structure checked before its data is read.

``open_archive`` parses every member's ``.npy`` header (shape, dtype, and that the member
holds exactly the bytes it declares, uncompressed), the JSON header (``check_header``) and
that the two agree; ``read_member`` then reads one array with ``allow_pickle=False``. Any
damage is a ``CheckpointError``. Used by ``tinygrad_lstm.checkpoint``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint_state import CheckpointError, check_header

__all__ = ["FORMAT", "HEADER", "VERSION", "Archive", "open_archive", "read_member"]

FORMAT = "tinygrad-lstm-checkpoint"
VERSION = 1
HEADER = "header.json"
_MAX_NPY_HEADER = 10_000  # numpy's own default limit for a safe .npy header
_MAX_JSON_HEADER = 64 * 1024 * 1024


@dataclass
class Archive:
    """An opened checkpoint whose structure is checked and whose data is not read yet."""

    path: Path
    zip: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo]  # array key -> its member
    header: dict[str, Any]
    specs: dict[str, tuple[tuple[int, ...], np.dtype]]


def _npy_spec(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str
) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a member's ``.npy`` header, checked against the member's size."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(
            f"{where}: member {info.filename!r} is compressed; checkpoints "
            "store arrays uncompressed (refused: its size cannot be checked)"
        )
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(f, max_header_size=_MAX_NPY_HEADER)
        offset = f.tell()
    if dtype.hasobject:
        raise CheckpointError(
            f"{where}: array {info.filename[:-4]!r} holds Python objects, "
            "which would need pickle (running code from the file) to load; "
            "refused"
        )
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if offset + declared != info.file_size:
        raise CheckpointError(
            f"{where}: array {info.filename[:-4]!r} declares shape {shape} "
            f"and dtype {dtype} ({declared} bytes) but its member holds "
            f"{info.file_size - offset} bytes of data"
        )
    return tuple(shape), dtype


def read_member(archive: Archive, key: str) -> np.ndarray:
    try:
        with archive.zip.open(archive.members[key]) as f:
            return np.lib.format.read_array(f, allow_pickle=False, max_header_size=_MAX_NPY_HEADER)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any damage is a refused file
        raise CheckpointError(
            f"{archive.path}: array {key!r} is unreadable ({type(exc).__name__}: {exc})"
        ) from None


def _parse_header(archive: Archive, where: str) -> dict:
    shape, dtype = archive.specs[HEADER]
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > _MAX_JSON_HEADER:
        raise CheckpointError(
            f"{where}: {HEADER} must be a 1-d uint8 array of at most "
            f"{_MAX_JSON_HEADER} bytes, got shape {shape} and dtype {dtype}"
        )
    raw = read_member(archive, HEADER)
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {HEADER} is not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(
            f"{where}: {HEADER} is nested too deeply to be a checkpoint header"
        ) from None


def open_archive(path: Path) -> Archive:
    """Open the checkpoint file ``path`` and check its structure; no array data is read
    but the JSON header. The caller closes ``Archive.zip``."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # noqa: BLE001 - empty, truncated, not a zip: all refused
        raise CheckpointError(
            f"{where}: not a checkpoint archive ({type(exc).__name__}: {exc})"
        ) from None
    try:
        members, specs = {}, {}
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else None
            if key is None or key in members:
                raise CheckpointError(
                    f"{where}: unexpected member {info.filename!r}; not "
                    "written by tinygrad_lstm.checkpoint.save"
                )
            members[key] = info
            specs[key] = _npy_spec(zf, info, where)
        if HEADER not in members:
            raise CheckpointError(
                f"{where}: no {HEADER} entry; not written by tinygrad_lstm.checkpoint.save"
            )
        archive = Archive(path, zf, members, {}, specs)
        archive.header = check_header(_parse_header(archive, where), FORMAT, VERSION, where)
        listed = archive.header["arrays"]
        missing = sorted(set(listed) - set(members))
        extra = sorted(set(members) - set(listed) - {HEADER})
        if missing or extra:
            raise CheckpointError(
                f"{where}: the archive does not match its header: missing "
                f"arrays {missing}, unexpected arrays {extra}"
            )
        for key, (shape, dtype) in listed.items():
            if specs[key] != (shape, dtype):
                raise CheckpointError(
                    f"{where}: array {key!r} has shape {specs[key][0]} and "
                    f"dtype {specs[key][1]}, the header says {shape} and "
                    f"{dtype}"
                )
        del specs[HEADER]
        return archive
    except CheckpointError:
        zf.close()
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged member (bad CRC, truncated, ...)
        zf.close()
        raise CheckpointError(
            f"{where}: damaged checkpoint archive ({type(exc).__name__}: {exc})"
        ) from None
