"""The folders say the architecture: ``tooling -> layers -> compiler -> ops -> engine``.

Each layer lives in its own folder (tinygrad_lstm/ the engine, ops/, compiler/, layers/,
tooling/) and imports only the layers below it; the engine resolves ops and cells by name at
call time.
The public short paths of the tooling modules (``tinygrad_lstm.testing`` and the like) are
the very module objects of ``tinygrad_lstm.tooling``.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Each folder, the package it installs as, and the packages it may not import.
LAYERS = {
    "tinygrad_lstm": ("tinygrad_lstm", ("ops", "compiler", "layers", "tooling")),
    "ops": ("tinygrad_lstm.ops", ("compiler", "layers", "tooling")),
    "compiler": ("tinygrad_lstm.compiler", ("layers", "tooling")),
    "layers": ("tinygrad_lstm.layers", ("tooling",)),
}
PUBLIC_ALIASES = ("testing", "viz", "tasks", "datasets", "explain", "interop")


def _imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against ``package``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _is_alias(path: Path) -> bool:
    return path.parent.name == "tinygrad_lstm" and path.stem in PUBLIC_ALIASES


def _is_doorway(path: Path) -> bool:
    """A public alias or ``python -m tinygrad_lstm``: files that only point into tooling/."""
    return _is_alias(path) or (path.parent.name == "tinygrad_lstm" and path.stem == "__main__")


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(folder):
    package, forbidden = LAYERS[folder]
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if _is_doorway(path):
            continue
        for name in _imported_modules(path, package):
            for above in forbidden:
                if name == f"tinygrad_lstm.{above}" or name.startswith(f"tinygrad_lstm.{above}."):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_the_engine_folder_holds_no_tooling_beyond_the_public_aliases():
    aliases = [p for p in (ROOT / "tinygrad_lstm").glob("*.py") if _is_alias(p)]
    assert sorted(p.stem for p in aliases) == sorted(PUBLIC_ALIASES)
    for path in aliases:
        code = [
            line
            for line in path.read_text().splitlines()
            if line and not line.startswith(('"""', " ")) and '"""' not in line
        ]
        assert len(code) <= 3, f"{path.name} is an alias; its code belongs in tooling/"


@pytest.mark.parametrize("name", PUBLIC_ALIASES)
def test_a_public_short_path_is_the_tooling_module_itself(name):
    short = importlib.import_module(f"tinygrad_lstm.{name}")
    assert short is importlib.import_module(f"tinygrad_lstm.tooling.{name}")
    assert Path(short.__file__).parent == ROOT / "tooling"


def test_importing_the_engine_loads_no_tooling():
    probe = (
        "import sys, tinygrad_lstm; "
        "print(sorted(m for m in sys.modules if m.startswith('tinygrad_lstm.tooling')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert out.strip() == "[]", out


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_lstm", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: tinygrad-lstm" in result.stdout
