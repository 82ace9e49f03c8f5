"""The attention heatmap: shades by weight in the terminal, a PNG with matplotlib, padding
columns left out, and a wrong shape refused."""

import numpy as np
import pytest
from tinygrad_lstm.tooling.attention_heatmap import SHADES, heatmap_png, heatmap_text

SOURCE = list("3 May")
OUTPUT = ["0", "5", "<eos>"]
# Rows sum to 1 over the source; the last two columns are padding and must not show.
WEIGHTS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.05, 0.55, 0.25, 0.15, 0.0, 0.0],
        [0.1, 0.1, 0.2, 0.3, 0.3, 0.0, 0.0],
    ]
)


def test_text_shades_each_weight_and_names_the_heaviest_column():
    lines = heatmap_text(SOURCE, OUTPUT, WEIGHTS).splitlines()
    assert lines[0] == "      |3_May|"
    assert lines[1] == "    0 |@    | 1.00 on '3'"
    assert lines[2] == f"    5 |  {SHADES[5]}{SHADES[2]}{SHADES[1]}| 0.55 on 'M'"
    assert lines[3] == f"<eos> |{SHADES[1] * 2}{SHADES[2]}{SHADES[3] * 2}| 0.30 on 'a'"
    assert lines[4].startswith("shades, by weight:")


def test_png_is_written_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "attention.png"
    assert heatmap_png(str(path), SOURCE, OUTPUT, WEIGHTS, title="3 May -> 05")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("draw", [heatmap_text, lambda *a: heatmap_png("unused.png", *a)])
def test_weights_of_the_wrong_shape_are_refused(draw):
    with pytest.raises(ValueError, match=r"weights must be \(3, >= 5\) .* got shape \(3, 4\)"):
        draw(SOURCE, OUTPUT, WEIGHTS[:, :4])
