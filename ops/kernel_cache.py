"""Generated kernel modules (the cell compiler's, ops/rule_ufuncs.py's), written to disk
once and loaded from there.

A generated module is saved as ``<cache dir>/<name>_<hash>.py``, where the hash covers the
source itself and the files it was made by or calls into (the generator, the fast float32
functions of ops/scalar_math.py, the matmul helper of ops/recurrent_kernels.py): a changed
generator or helper gives a new file, so no stale kernel can be loaded.
Its functions are ``numba.njit(cache=True)`` (or ``numba.vectorize(cache=True)``), so Numba
keeps their machine code beside the file (``__pycache__``) and a second process loads
instead of compiling.

The directory is ``$TINYGRAD_LSTM_KERNEL_CACHE`` when set, else
``$XDG_CACHE_HOME/tinygrad_lstm/kernels`` (``~/.cache/...`` by default).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
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


def cache_dir() -> Path:
    """Where generated kernel modules are kept."""
    explicit = os.environ.get("TINYGRAD_LSTM_KERNEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_lstm" / "kernels"


def source_hash(source: str, dependencies: tuple[Path, ...] = ()) -> str:
    """Hex digest of ``source`` and of the generator files it was made by."""
    digest = hashlib.sha256(source.encode())
    here = Path(__file__).parent
    for path in (*(here / name for name in _DEPENDENCIES), *dependencies):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def load_module(name: str, source: str, dependencies: tuple[Path, ...] = ()) -> ModuleType:
    """The module of ``source``: from this process's table, else from the cache directory
    (written there first if missing, atomically so concurrent processes never read half).
    ``dependencies``: the files of the generator that made it, beyond ops/'s own."""
    key = f"tinygrad_lstm_kernels_{name}_{source_hash(source, dependencies)}"
    module = _LOADED.get(key)
    if module is not None:
        return module
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.py"
    if not path.exists() or path.read_text() != source:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    _LOADED[key] = module
    return module
