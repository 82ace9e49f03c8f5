"""The documentation runs as written: every fenced block of README.md and docs/*.md marked
``<!-- runnable -->`` is run, in order, as a reader would paste it (docs/writing_docs.md
describes the markers).

Each document gets a scratch directory of its own, with the checkout's ``examples/`` linked
in (the docs name files such as ``examples/custom_cell.py``), so what a block writes
(``runs/``, a PNG, a saved script) stays there and later blocks of the same document see it.
A ``python`` block runs under this interpreter; a ``bash`` block under ``bash -e`` with this
interpreter's ``bin/`` first on PATH (``tinygrad-lstm``, ``python``); one BLAS thread unless
``OPENBLAS_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The marker, any other HTML comments, then the fence: its language and its body.
_BLOCK = re.compile(
    r"^<!-- runnable(?P<options>:[^>]*)? -->\n(?:<!--.*?-->\n)*```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)
_OPTIONS = re.compile(r"^(save as \S+|needs \w+)$")


@dataclass
class Block:
    document: Path
    line: int
    lang: str
    body: str
    save_as: str | None
    needs: list[str]

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def runnable_blocks(document: Path) -> list[Block]:
    """The marked blocks of ``document`` in order; a malformed marker fails the test."""
    text = document.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        options = [o.strip() for o in (match["options"] or ":")[1:].split(",") if o.strip()]
        line = text.count("\n", 0, match.start()) + 1
        bad = [o for o in options if not _OPTIONS.match(o)]
        assert not bad, f"{document.name}:{line}: unknown runnable option(s) {bad}"
        save_as = next((o.removeprefix("save as ") for o in options if o.startswith("save")), None)
        needs = [o.removeprefix("needs ") for o in options if o.startswith("needs")]
        lang = match["lang"]
        assert save_as or lang in ("python", "bash"), f"{document.name}:{line}: runs {lang!r}?"
        blocks.append(Block(document, line, lang, match["body"], save_as, needs))
    markers = len(re.findall(r"^<!-- runnable", text, re.MULTILINE))
    assert markers == len(blocks), f"{document.name}: a runnable marker is not before a block"
    return blocks


def test_the_marker_is_found_where_it_is_documented():
    blocks = runnable_blocks(ROOT / "docs" / "writing_docs.md")
    assert [(b.lang, b.save_as) for b in blocks] == [("python", None)]


def _run(block: Block, where: Path) -> None:
    if block.save_as:
        (where / block.save_as).write_text(block.body)
        return
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(where))
    # As the README advises on a busy machine (CI shares its cores): 3x faster measured here.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-c", block.body] if block.lang == "python" else None
    command = command or ["bash", "-e", "-o", "pipefail", "-c", block.body]
    proc = subprocess.run(
        command, cwd=where, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, (
        f"the block at {block} exited {proc.returncode}:\n{block.body}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )


@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if runnable_blocks(d)],
    ids=lambda d: str(d.relative_to(ROOT)),
)
def test_runnable_blocks_run_as_written(document, tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    skipped = []
    for block in runnable_blocks(document):
        missing = [m for m in block.needs if importlib.util.find_spec(m) is None]
        if missing:
            skipped.append(f"{block} (needs {', '.join(missing)})")
            continue
        _run(block, tmp_path)
    if skipped:  # the others ran and passed; say which did not run
        pytest.skip(f"not run: {'; '.join(skipped)}")
