"""``--import FILE_OR_MODULE`` under hostile input: a script that exits, a directory, a
package beside the user, a script that fails half way. Each gives one line and a non-zero
status, and leaves the registry as it found it."""

import os
import subprocess
import sys
import textwrap

import pytest
from test_cli import SCRIPT
from tinygrad_lstm.tooling.cli import main

from tinygrad_lstm import registry


@pytest.mark.parametrize("code", ["0", "3", "None", "'bye'"])
def test_a_script_calling_sys_exit_is_one_line_and_non_zero(
    tmp_path, capsys, code, registry_restored
):
    script = tmp_path / "exits.py"
    script.write_text(f"import sys\nsys.exit({code})\n")
    assert main(["ops", "--import", str(script)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"--import {script}: the imported code called sys.exit(" in err, err


def test_a_directory_is_named_as_one(tmp_path, capsys):
    folder = tmp_path / "cells"
    folder.mkdir()
    assert main(["ops", "--import", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--import {folder}: is a directory" in err and "no such file" not in err, err


def test_a_failed_import_unregisters_what_it_registered(tmp_path, capsys, registry_restored):
    script = tmp_path / "half_written.py"
    script.write_text(
        textwrap.dedent(
            """\
            import tinygrad_lstm as tg
            from tinygrad_lstm.layers import RNNCell


            @tg.register_op("half_written_op", arity=1)
            class HalfWritten(tg.Function):
                @staticmethod
                def forward(ctx, x):
                    return x

                @staticmethod
                def backward(ctx, g):
                    return (g,)


            tg.register_cell("half_written_cell")(type("HalfCell", (RNNCell,), {}))
            raise RuntimeError("the rest is not written yet")
            """
        )
    )
    assert main(["ops", "--import", str(script)]) == 2
    assert "RuntimeError: the rest is not written yet" in capsys.readouterr().err
    assert "half_written_op" not in registry.OPS
    assert "half_written_op" not in registry._OP_INFO
    assert "half_written_cell" not in registry._CELLS


_PACKAGE_CELL = """\
import tinygrad_lstm as tg
from tinygrad_lstm.layers import RNNCell

tg.register_cell("pkg_elman")(type("PkgElman", (RNNCell,), {}))
"""


@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_a_package_in_the_current_directory_imports_by_name_from_both_entry_points(tmp_path, how):
    """``python -m`` puts the current directory on sys.path and the console script does not;
    --import searches it in both, so the two behave the same."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "cells.py").write_text(_PACKAGE_CELL)
    command = [SCRIPT] if how == "console script" else [sys.executable, "-m", "tinygrad_lstm"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for spec in ("pkg.cells", "pkg"):
        result = subprocess.run(
            [*command, "ops", "--import", "pkg.cells", "--import", spec],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert any(line.startswith("pkg_elman ") for line in result.stdout.splitlines())
