"""The hand-written recurrent kernels' machinery (ops/recurrent_kernels.py), nothing else:
their Numba functions are built on first use, not at import. It goes with those kernels.

Importing numba and loading kernels from the on-disk cache would put ``import
tinygrad_lstm`` far past half a second (benchmarks/README.md has the figures). So
recurrent_kernels.py marks plain Python functions with a ``LazyKernels`` (``jit``: an @njit
loop with explicit signatures), takes their names out of the module (``seal``) and sets
``__getattr__ = kernels.build``: the first read of a kernel builds it (``cache=True``: a
second process loads it instead of compiling) and binds it in the module. (Everything else
builds its Numba functions in explicit cached factories: ops/scalar_math.py's
``kernel_functions()``, ops/rule_ufuncs.py's ``rule_ufunc``.)

The scalar helpers those kernels call are marked with ``helper`` (inlined) or
``reassociated``; ``jit_helpers`` jits them before the first kernel is built and rebinds
every name of recurrent_kernels.py that refers to one (the cell compiler's generated driver,
which imports ``_matmul_rows`` from there, calls it too). They also call ops/scalar_math.py's
functions, which ``kernel_functions()`` makes callable from kernels as they are.

Numba checks a cached kernel against the file the kernel is defined in only: an edit to a
helper it inlines (ops/scalar_math.py) would keep the old machine code. So the cache is
keyed on all the kernel sources (``drop_stale_cache``): before the first kernel is built,
a hash of them is compared with the one stored beside Numba's cache files, and on a
difference the cached kernels are deleted and compiled again. (Generated modules are keyed
on their own text and on scalar_math.py by ops/kernel_cache.py.)
"""

import hashlib
from pathlib import Path
from types import FunctionType

_HELPERS: dict = {}  # scalar function -> its numba.njit options
_JITTED: dict = {}  # scalar function -> its jitted form
_NAMESPACES: dict = {}  # module name -> module globals that may refer to a helper
# The files whose code the cached kernels of ops/ contain, and the modules defining them.
KERNEL_SOURCES = ("recurrent_kernels.py", "scalar_math.py", "lazy_numba.py")
KERNEL_MODULES = ("recurrent_kernels",)
STAMP = "kernel-sources.sha256"
_cache_checked: list[bool] = []


def drop_stale_cache(folder: Path, sources: list[Path], modules=KERNEL_MODULES) -> int:
    """Delete the Numba cache files of ``modules`` in ``folder`` unless the hash of
    ``sources`` equals the one stored there (``STAMP``), then store the current hash.
    Returns how many files were deleted; a folder that cannot be written is left alone."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    stamp = folder / STAMP
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return 0
        stale = [
            f
            for m in modules
            for pattern in (f"{m}.*.nbi", f"{m}.*.nbc")
            for f in folder.glob(pattern)
        ]
        for f in stale:
            f.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return 0
    return len(stale)


def _probe():  # defined here, in ops/: Numba's cache for it goes where the kernels' does
    return 0


def _check_cache_once() -> None:
    if _cache_checked:
        return
    _cache_checked.append(True)
    import numba

    # Numba's own choice of folder; none without JIT (NUMBA_DISABLE_JIT=1: nothing cached).
    folder = getattr(getattr(numba.njit(cache=True)(_probe), "_cache", None), "_cache_path", None)
    if folder is not None:
        here = Path(__file__).parent
        drop_stale_cache(Path(folder), [here / name for name in KERNEL_SOURCES])


def _register_namespace(namespace: dict) -> None:
    _NAMESPACES[namespace["__name__"]] = namespace


def helper(func: FunctionType) -> FunctionType:
    """A scalar function the kernels call; jitted (inlined) before a kernel is built."""
    _HELPERS[func] = {"inline": "always", "error_model": "numpy"}
    _register_namespace(func.__globals__)
    return func


def reassociated(func: FunctionType) -> FunctionType:
    """A helper jitted with reassociated float sums (so its reductions vectorize), not
    inlined: the flag stays on its own instructions, away from the kernels' careful math."""
    _HELPERS[func] = {"fastmath": {"reassoc", "contract"}, "error_model": "numpy"}
    _register_namespace(func.__globals__)
    return func


def jit_helpers() -> None:
    """Jit every marked helper (once) and point each module name bound to one at its jitted
    form, so kernels compiled afterwards find jitted functions among their globals; make
    ops/scalar_math.py's functions callable from kernels."""
    import numba

    from . import scalar_math

    scalar_math.kernel_functions()  # the kernels call those by name, as they are
    for func, options in _HELPERS.items():
        if func not in _JITTED:
            _JITTED[func] = numba.njit(**options)(func)
    for namespace in _NAMESPACES.values():
        for name, value in list(namespace.items()):
            if isinstance(value, FunctionType) and value in _JITTED:
                namespace[name] = _JITTED[value]


class LazyKernels:
    """The kernels of one module (``namespace``, its ``globals()``), each built on first use.

    ``jit`` argument codes: "1"/"2"/"3" a C-contiguous array of that many dims, "b" a bool;
    each kernel gets a float32 and a float64 signature (all its arrays of that dtype).
    ``error_model="numpy"`` drops the per-division zero checks that would stop LLVM from
    vectorizing the loops.
    """

    def __init__(self, namespace: dict) -> None:
        self._namespace = namespace
        self._jits: dict = {}
        _register_namespace(namespace)

    def jit(self, codes: str):
        """Mark a kernel to be jitted on first use, for the argument codes ``codes``."""

        def mark(func: FunctionType) -> FunctionType:
            self._jits[func.__name__] = (func, codes)
            return func

        return mark

    def seal(self) -> None:
        """Take every marked name out of the module, so that reading one calls ``build``."""
        for name in self._jits:
            self._namespace.pop(name, None)

    def build(self, name: str):
        """The module's ``__getattr__``: build kernel ``name`` (loading it from the on-disk
        cache when there), bind it in the module and return it."""
        _check_cache_once()
        if name not in self._jits:
            raise AttributeError(f"module {self._namespace['__name__']!r} has no kernel {name!r}")
        return self._build_jit(name)

    def compile_all(self) -> None:
        """Build (or load from the on-disk cache) every kernel of the module now."""
        for name in self._jits:
            if name not in self._namespace:
                self.build(name)

    def _build_jit(self, name: str):
        import numba

        jit_helpers()
        func, codes = self._jits[name]
        for callee in func.__code__.co_names:  # kernels it calls must be built first
            if callee in self._jits and callee not in self._namespace:
                self._build_jit(callee)
        signatures = []
        for dtype in (numba.float32, numba.float64):
            args = [
                numba.boolean if code == "b" else numba.types.Array(dtype, int(code), "C")
                for code in codes
            ]
            signatures.append(numba.void(*args))
        built = numba.njit(signatures, cache=True, error_model="numpy")(func)
        self._namespace[name] = built
        return built
