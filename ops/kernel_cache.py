"""Generated kernel modules (the cell compiler's, ops/rule_ufuncs.py's), written to disk
once and loaded from there.

A generated module is saved as ``<cache dir>/<name>_<hash>.py``, where the hash covers the
source itself and the files it was made by or calls into (the generator, the fast float32
functions of ops/scalar_math.py, the matmul helper of ops/recurrent_kernels.py): a changed
generator or helper gives a new file, so no stale kernel can be loaded.
Its functions are ``numba.njit(cache=True)`` (or ``numba.vectorize(cache=True)``), so Numba
keeps their machine code beside the file (``__pycache__``, or under ``NUMBA_CACHE_DIR``) and a
second process loads instead of compiling.

The directory is ``$TINYGRAD_LSTM_KERNEL_CACHE`` when set, else
``$XDG_CACHE_HOME/tinygrad_lstm/kernels`` (``~/.cache/...`` by default).

The cache is only an optimisation, so no state of it may break an op. When the directory
cannot be used (read-only, a file in its place, not creatable) or Numba's files for a module
are damaged (a truncated index), a warning names the path once and the module is written to
a private temporary directory instead, removed when the process exits: the kernels compile
as if the cache were empty. A cached ``.py`` whose bytes differ from the source (truncated,
not UTF-8) is simply written again.
"""

from __future__ import annotations

import atexit
import errno
import functools
import hashlib
import importlib.util
import io
import os
import pickletools
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["cache_dir", "load_module", "source_hash"]

_LOADED: dict[str, ModuleType] = {}
# The files of ops/ that generated code is made by or calls into; a generator elsewhere
# (the cell compiler) names its own files too (``load_module(..., dependencies=)``).
_DEPENDENCIES = (
    "rule_source.py",
    "scalar_math.py",
    "lazy_numba.py",
    "recurrent_kernels.py",
)
_VARIABLE = "TINYGRAD_LSTM_KERNEL_CACHE"
# Numba writes an index as two pickles (its version, then the index) and a data file as one.
_PICKLES_PER_FILE = {".nbi": 2, ".nbc": 1}
_warned: set[str] = set()


def cache_dir() -> Path:
    """Where generated kernel modules are kept."""
    explicit = os.environ.get(_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_lstm" / "kernels"


@functools.cache
def _dependencies_digest(dependencies: tuple[Path, ...]) -> bytes:
    # The generator files cannot change under a running process: read them once.
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in (*(here / name for name in _DEPENDENCIES), *dependencies):
        digest.update(path.read_bytes())
    return digest.digest()


def source_hash(source: str, dependencies: tuple[Path, ...] = ()) -> str:
    """Hex digest of ``source`` and of the generator files it was made by."""
    digest = hashlib.sha256(source.encode())
    digest.update(_dependencies_digest(tuple(dependencies)))
    return digest.hexdigest()[:20]


def load_module(name: str, source: str, dependencies: tuple[Path, ...] = ()) -> ModuleType:
    """The module of ``source``: from this process's table, else from the cache directory
    (written there first if missing, atomically so concurrent processes never read half),
    else, when the cache cannot be used, from a private temporary directory.
    ``dependencies``: the files of the generator that made it, beyond ops/'s own."""
    key = f"tinygrad_lstm_kernels_{name}_{source_hash(source, dependencies)}"
    module = _LOADED.get(key)
    if module is not None:
        return module
    path = _cached_source(cache_dir(), key, source)
    if path is not None:
        damaged = _damaged_numba_file(path)
        if damaged is not None:
            _warn_once(damaged, "holds a damaged Numba cache file")
            path = None
    if path is None:
        path = _write_source(_private_dir(), key, source)
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    _LOADED[key] = module
    return module


def _cached_source(folder: Path, key: str, source: str) -> Path | None:
    """``folder/key.py`` holding exactly ``source``, or None (after a warning) when the
    folder cannot hold it: Numba keeps the machine code beside it, so it must be writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, "not writable")
        return _write_source(folder, key, source)
    except OSError as error:
        _warn_once(folder, f"cannot be used ({error.strerror or error})")
        return None


def _write_source(folder: Path, key: str, source: str) -> Path:
    path = folder / f"{key}.py"
    text = source.encode()
    # Bytes, not text: a damaged file need not be UTF-8, and any difference means rewrite.
    if not path.is_file() or path.read_bytes() != text:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return path


def _damaged_numba_file(path: Path) -> Path | None:
    """The first of Numba's cache files for the module at ``path`` that is not a whole
    pickle stream, or None. Its opcodes are walked without building any object (Numba itself
    loads them, and a truncated one raises from inside its loader)."""
    import numba  # here, not at the top: importing tinygrad_lstm must not import Numba

    places = [path.parent / "__pycache__"]
    if numba.config.CACHE_DIR:
        places.extend(Path(numba.config.CACHE_DIR).glob("*"))
    for place in places:
        for candidate in place.glob(f"{path.stem}.*.nb[ic]"):
            if not _whole_pickles(candidate.read_bytes(), _PICKLES_PER_FILE[candidate.suffix]):
                return candidate
    return None


def _whole_pickles(data: bytes, count: int) -> bool:
    stream = io.BytesIO(data)
    try:
        for _ in range(count):
            for _opcode in pickletools.genops(stream):
                pass
    except ValueError:
        return False
    return stream.tell() == len(data)


@functools.cache
def _private_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tinygrad_lstm_kernels_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _warn_once(path: Path, problem: str) -> None:
    if str(path) in _warned:
        return
    _warned.add(str(path))
    warnings.warn(
        f"kernel cache: {path} {problem}; compiling in a private temporary directory "
        f"instead (set {_VARIABLE} to a writable directory to move the cache)",
        RuntimeWarning,
        stacklevel=3,
    )
