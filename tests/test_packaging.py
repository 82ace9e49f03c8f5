"""Packaging: the plugins are declared as entry points, ``ops``/``layers``/``tooling`` install
only under ``tinygrad_lstm``, and CI runs exactly the README's test command."""

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = importlib.metadata.distribution("tinygrad-lstm")


def test_builtin_plugins_are_entry_points():
    eps = {ep.name: ep.value for ep in DIST.entry_points if ep.group == "tinygrad_lstm.plugins"}
    assert eps.get("ops") == "tinygrad_lstm.ops"
    assert eps.get("layers") == "tinygrad_lstm.layers"
    scripts = {ep.name: ep.value for ep in DIST.entry_points if ep.group == "console_scripts"}
    assert scripts == {"tinygrad-lstm": "tinygrad_lstm.tooling.cli:main"}


def test_metadata_declares_runtime_deps_and_extras():
    requires = DIST.requires or []
    names = {
        re.split(r"[ ;<>=!\[]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r
    }
    assert {"numpy", "numba"} <= names
    extras = set(DIST.metadata.get_all("Provides-Extra") or [])
    assert {"test", "plot"} <= extras


PACKAGES = (
    "tinygrad_lstm.ops",
    "tinygrad_lstm.compiler",
    "tinygrad_lstm.layers",
    "tinygrad_lstm.tooling",
)


def test_no_bare_ops_or_layers_module_is_installed(tmp_path):
    # -I and a foreign working directory: only what the install put on sys.path is visible.
    probe = (
        "import importlib.util as u, json; "
        "print(json.dumps({n: getattr(u.find_spec(n), 'origin', None) "
        "for n in ('ops', 'compiler', 'layers', 'tooling', 'tinygrad_lstm.ops', "
        "'tinygrad_lstm.compiler', 'tinygrad_lstm.layers', 'tinygrad_lstm.tooling')}))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    origins = json.loads(result.stdout)
    for bare in ("ops", "compiler", "layers", "tooling"):
        origin = origins[bare]
        assert origin is None or not Path(origin).resolve().is_relative_to(ROOT), (
            f"import {bare} finds this repository's {bare}/ through the install: {origin}"
        )
    for name in PACKAGES:
        assert origins[name] and origins[name].endswith("__init__.py"), origins
    top_level = (DIST.read_text("top_level.txt") or "").split()
    assert not {"ops", "compiler", "layers", "tooling"} & set(top_level), top_level


def _readme_test_command() -> str:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    lines = [line for line in blocks[0].splitlines() if line.strip()]
    return lines[1].split("  #")[0].strip()


def test_ci_runs_the_readme_test_command_verbatim():
    command = _readme_test_command()
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines(), f"{command!r} not a line of .ci/run"


def test_hypothesis_is_a_runtime_dependency_and_pytest_is_not():
    # `tinygrad-lstm gradcheck` is a user command built on hypothesis; only the suite and the
    # pytest plugin need pytest. A clean `pip install -e .` must run every command.
    requires = DIST.requires or []
    runtime = {
        re.split(r"[ ;<>=!\[]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r
    }
    assert "hypothesis" in runtime, requires
    assert "pytest" not in runtime, requires


# Run the console script with the test and optional extras made unimportable, as after the
# README's plain `pip install -e .` (the CI smoke step checks the same in a real clean venv).
_WITHOUT_EXTRAS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pytest", "_pytest", "torch", "matplotlib"):
            raise ImportError(f"{name} is not installed by `pip install -e .`")
sys.meta_path.insert(0, Block())
from tinygrad_lstm.tooling.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_every_command_runs_without_the_test_extras(tmp_path):
    for argv in (
        ["--help"],
        ["ops"],
        ["gradcheck", "--ops", "sigmoid", "--cells", "rnn", "--max-examples", "2"],
        ["demo", "--steps", "3", "--seq-len", "5", "--hidden", "4", "--batch", "2"],
    ):
        result = subprocess.run(
            [sys.executable, "-c", _WITHOUT_EXTRAS, *argv],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"tinygrad-lstm {' '.join(argv)}:\n{result.stderr}"


def test_the_shipped_data_files_are_package_data(tmp_path):
    # setuptools' build_py copies what a wheel holds (modules and package data). It runs on a
    # copy of the sources without the editable install's egg-info, whose file list would
    # otherwise add files that pyproject.toml does not declare.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("tinygrad_lstm", "ops", "compiler", "layers", "tooling"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path / "built"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    shipped = {p.name for p in (ROOT / "tooling" / "data").iterdir()}
    assert {"sunspots.csv", "README.md", "recurrence.txt"} <= shipped
    built = tmp_path / "built" / "tinygrad_lstm" / "tooling" / "data"
    missing = sorted(name for name in shipped if not (built / name).is_file())
    assert not missing, f"not in the wheel's files: {missing}"
