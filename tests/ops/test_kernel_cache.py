"""ops/kernel_cache.py: no state of the on-disk cache may break an op. A directory that
cannot be used, or damaged files in it, give one warning naming the path and the variable
that moves the cache, and the kernels compile elsewhere with the same results."""

import os
import shutil
import subprocess
import sys
import textwrap
import uuid

import numba
import pytest
from tinygrad_lstm.ops import kernel_cache


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A kernel cache under tmp_path, with this process's table and warnings reset, so
    each test loads from disk and sees its own warnings."""
    folder = tmp_path / "kernels"
    monkeypatch.setenv("TINYGRAD_LSTM_KERNEL_CACHE", str(folder))
    monkeypatch.setattr(kernel_cache, "_LOADED", {})
    monkeypatch.setattr(kernel_cache, "_warned", set(), raising=False)
    return folder


def _source(offset: float) -> str:
    """A generated-looking module: one cached njit function (compiled on first call, as the
    cell compiler's are). A unique constant keeps other tests' modules apart."""
    return textwrap.dedent(
        f"""\
        import numba


        @numba.njit(cache=True)
        def shift(x):
            return x + {offset!r}
        """
    )


def _load_and_call(source: str) -> float:
    return kernel_cache.load_module("cache_test", source).shift(1.0)


def test_a_cache_path_naming_a_file_warns_and_still_computes(fresh_cache):
    fresh_cache.parent.mkdir(parents=True, exist_ok=True)
    fresh_cache.write_text("not a directory")
    offset = uuid.uuid4().int % 1000 + 0.5
    with pytest.warns(RuntimeWarning, match=r"kernels.*TINYGRAD_LSTM_KERNEL_CACHE") as caught:
        assert _load_and_call(_source(offset)) == 1.0 + offset
        assert _load_and_call(_source(offset + 1)) == 2.0 + offset
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert str(fresh_cache) in str(caught[0].message)
    assert fresh_cache.read_text() == "not a directory"


def test_a_cached_source_that_is_not_utf8_is_rewritten(fresh_cache):
    source = _source(uuid.uuid4().int % 1000 + 0.25)
    kernel_cache.load_module("cache_test", source)
    (path,) = fresh_cache.glob("*cache_test*.py")
    path.write_bytes(b"\xff\xfe not utf-8 \x80")
    kernel_cache._LOADED.clear()
    assert _load_and_call(source) == 1.0 + float(source.split("+ ")[1])
    assert path.read_text() == source


@pytest.mark.parametrize("numba_dir", ["", "numba"], ids=["in-tree", "NUMBA_CACHE_DIR"])
def test_a_truncated_numba_index_warns_and_still_computes(
    fresh_cache, tmp_path, monkeypatch, numba_dir
):
    """Numba's loader unpickles its .nbi index and raises on a truncated one; the cache
    must see the damage first and compile this module afresh elsewhere."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / numba_dir) if numba_dir else "")
    offset = uuid.uuid4().int % 1000 + 0.75
    source = _source(offset)
    assert _load_and_call(source) == 1.0 + offset
    (index,) = tmp_path.rglob("*cache_test*.nbi")
    index.write_bytes(index.read_bytes()[:-7])
    kernel_cache._LOADED.clear()
    with pytest.warns(RuntimeWarning, match="TINYGRAD_LSTM_KERNEL_CACHE") as caught:
        assert _load_and_call(source) == 1.0 + offset
    assert len(caught) == 1
    assert str(index) in str(caught[0].message)


_SIGMOID = """
import numpy as np
import tinygrad_lstm as tg
x = np.linspace(-4, 4, 9)
y = tg.Tensor(x).sigmoid().data
np.testing.assert_allclose(y, 1 / (1 + np.exp(-x)), rtol=1e-15)
print("ok")
"""


def _read_only(command: list[str], folder: str) -> list[str]:
    """``command`` run where ``folder`` is read-only: root ignores permission bits, so it
    gets a private mount namespace in which the folder is remounted read-only."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return command
    unshare = shutil.which("unshare")
    probe = [unshare or "unshare", "-rm", "mount", "--bind", folder, folder]
    if unshare is None or subprocess.run(probe, capture_output=True, check=False).returncode:
        pytest.skip("running as root without user namespaces: cannot make a read-only folder")
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    return [unshare, "-rm", "sh", "-c", f'{mount} && exec "$@"', "sh", *command]


def test_a_read_only_cache_directory_warns_once_and_sigmoid_still_works(tmp_path):
    folder = tmp_path / "kernels"
    folder.mkdir()
    env = dict(
        os.environ,
        TINYGRAD_LSTM_KERNEL_CACHE=str(folder),
        NUMBA_CACHE_DIR="",
        PYTHONWARNINGS="default",
    )
    command = _read_only([sys.executable, "-c", _SIGMOID], str(folder))
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(folder, 0o755)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]
    warnings = [line for line in proc.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warnings) == 1, proc.stderr
    assert str(folder) in warnings[0] and "TINYGRAD_LSTM_KERNEL_CACHE" in warnings[0]
    assert not list(folder.iterdir()), "nothing can have been written there"
