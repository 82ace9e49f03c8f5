"""benchmarks/harness.py pins BLAS and OpenMP to ``BENCH_THREADS`` threads, and says so when
it cannot.

The harness acts at import (the thread variables must be set before NumPy loads its BLAS), so
each test imports it by path in a fresh interpreter, with the thread variables removed from
the environment, and reports what it sees as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "harness.py"
NAMES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MISSPELT = ("OMP_NUMTHREADS", "OPENBLAS_NUMTHREADS", "MKL_NUMTHREADS")

IMPORT = f"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("harness", {str(HARNESS)!r})
harness = sys.modules["harness"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)
"""


def run_with_harness(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` after importing the harness, in a new interpreter whose environment has
    no thread variables but ``env``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in NAMES + MISSPELT + ("BENCH_THREADS", "BENCHTHREADS")
    }
    return subprocess.run(
        [sys.executable, "-c", IMPORT + code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def environment_after_import(**env: str) -> dict:
    result = run_with_harness(
        "print(json.dumps({k: v for k, v in os.environ.items() if 'THREAD' in k}))", **env
    )
    assert result.returncode == 0, f"importing the harness failed:\n{result.stderr}"
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("2", "2")])
def test_harness_sets_the_variables_blas_and_openmp_read(given, expected):
    env = {} if given is None else {"BENCH_THREADS": given}
    seen = environment_after_import(**env)
    assert {k: seen.get(k) for k in NAMES} == dict.fromkeys(NAMES, expected), (
        f"BENCH_THREADS={given}: the harness should set {NAMES} to {expected}, got {seen}"
    )
    assert not set(MISSPELT) & set(seen), f"misspelt variables set: {seen}"


def test_harness_refuses_a_thread_count_that_is_not_a_positive_integer():
    result = run_with_harness("", BENCH_THREADS="zero")
    assert (
        result.returncode != 0
        and "BENCH_THREADS must be a positive integer, got 'zero'" in result.stderr
    ), result.stderr


def test_blas_runs_on_one_thread_after_import():
    """On a machine with more than one core, OpenBLAS starts one thread per core unless told."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    del threadpoolctl
    result = run_with_harness(
        "import threadpoolctl\n"
        "print(json.dumps([(p['internal_api'], p['num_threads'])"
        " for p in threadpoolctl.threadpool_info()]))"
    )
    assert result.returncode == 0, result.stderr
    pools = json.loads(result.stdout.splitlines()[-1])
    assert pools and all(n == 1 for _, n in pools), f"pools after import: {pools}"


def test_check_stops_on_a_pool_with_more_threads_than_asked():
    """A fabricated pool report: the check names the library and both counts."""
    result = run_with_harness(
        "harness.check_blas_threads(1, [{'internal_api': 'openblas', "
        "'filepath': '/lib/libopenblas.so', 'num_threads': 4}])"
    )
    assert result.returncode != 0, "a pool with 4 threads against BENCH_THREADS=1 passed"
    assert "BENCH_THREADS=1, but openblas (/lib/libopenblas.so): 4 threads" in result.stderr, (
        result.stderr
    )


def test_check_detects_blas_raised_after_pinning():
    """A real mismatch: BLAS set to 2 threads after the harness pinned it to 1."""
    pytest.importorskip("threadpoolctl")
    result = run_with_harness(
        "import threadpoolctl\n"
        "threadpoolctl.threadpool_limits(limits=2, user_api='blas')\n"
        "if max(p['num_threads'] for p in threadpoolctl.threadpool_info()) < 2:\n"
        "    print('SKIP: this BLAS does not run 2 threads'); sys.exit(0)\n"
        "harness.check_blas_threads(1, threadpoolctl.threadpool_info())"
    )
    if "SKIP" in result.stdout:
        pytest.skip("this BLAS does not run 2 threads")
    assert result.returncode != 0 and "BENCH_THREADS=1, but" in result.stderr, (
        f"BLAS on 2 threads passed the check:\n{result.stdout}{result.stderr}"
    )
