"""The cells of examples/custom_cell.py and examples/lstm_variants.py, for tests that run over
every cell: loaded once, kept out of the registry the rest of the suite sees.

``CELLS`` names every registered cell and these; a test module puts them in the registry
around each of its tests with ``register_example_cells(monkeypatch)``.
"""

import importlib.util
from pathlib import Path

from tinygrad_lstm import registry

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_example(name: str) -> None:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


_BEFORE = dict(registry._CELLS)
for _example in ("custom_cell", "lstm_variants"):
    _load_example(_example)
EXAMPLE_CELLS = {k: v for k, v in registry._CELLS.items() if k not in _BEFORE}
registry._CELLS.clear()
registry._CELLS.update(_BEFORE)
CELLS = sorted([*_BEFORE, *EXAMPLE_CELLS])


def register_example_cells(monkeypatch) -> None:
    """Register the example cells until the test ends."""
    for name, info in EXAMPLE_CELLS.items():
        monkeypatch.setitem(registry._CELLS, name, info)
