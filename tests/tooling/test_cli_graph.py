"""``tinygrad-lstm graph``: a DOT file with one cluster per step, rendered when `dot` exists."""

from __future__ import annotations

import re
import shutil

import pytest
from dot_parser import parse_dot
from tinygrad_lstm.tooling.cli import main

STEP = re.compile(r"^layer(\d+)/(forward|reverse)/t(\d+)$")


def test_lstm_three_steps(tmp_path, capsys):
    out = tmp_path / "graph.dot"
    assert main(["graph", "--cell", "lstm", "--seq-len", "3", "--out", str(out)]) == 0
    graph = parse_dot(out.read_text())
    steps = sorted(s.attrs["label"] for s in graph.root.subgraphs if STEP.match(s.attrs["label"]))
    assert steps == ["layer0/forward/t0", "layer0/forward/t1", "layer0/forward/t2"]
    leaf_labels = {
        a["label"].split("\\n")[0] for a in graph.nodes.values() if a["shape"] == "ellipse"
    }
    assert {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"} <= leaf_labels
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    if shutil.which("dot"):
        assert out.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    else:
        assert "Graphviz `dot` not found" in printed


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_png_of_a_stacked_bidirectional_gru(tmp_path):
    out = tmp_path / "g.dot"
    assert (
        main(
            [
                "graph",
                "--cell",
                "gru",
                "--seq-len",
                "2",
                "--layers",
                "2",
                "--bidirectional",
                "--out",
                str(out),
                "--format",
                "png",
            ]
        )
        == 0
    )
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [s.attrs["label"] for s in parse_dot(out.read_text()).root.subgraphs]
    assert sum(bool(STEP.match(label)) for label in labels) == 2 * 2 * 2


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["graph", "--cell", "nope", "--out", str(tmp_path / "g.dot")]) == 2
    assert "unknown cell 'nope'; registered cells:" in capsys.readouterr().err
    assert main(["graph", "--seq-len", "0", "--out", str(tmp_path / "g.dot")]) == 2
    assert "--seq-len must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "g.dot").exists()
