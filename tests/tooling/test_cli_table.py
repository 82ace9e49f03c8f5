"""The commands' one table printer (``tinygrad_lstm.tooling.commands._table``)."""

from tinygrad_lstm.tooling.commands import gradcheck, ops
from tinygrad_lstm.tooling.commands._table import format_table


def test_columns_are_padded_to_the_widest_cell_and_numbers_right_aligned():
    lines = format_table(
        ("name", "n", "what"), [("sigmoid", 3, "a free-text column"), ("add", 12, "x")], right={1}
    )
    assert lines == ["name      n  what", "sigmoid   3  a free-text column", "add      12  x"]


def test_no_trailing_spaces_after_a_short_last_cell():
    lines = format_table(("a", "b"), [("x", ""), ("longer", "y")])
    assert all(line == line.rstrip() for line in lines), lines


def test_ops_and_gradcheck_print_through_the_shared_printer():
    assert ops.print_table is gradcheck.print_table
    assert not hasattr(ops, "_table")


def test_ops_with_an_unknown_kind_is_an_error_not_an_empty_list(capsys):
    from tinygrad_lstm.tooling.cli import main

    assert main(["ops", "--kind", "elementwize"]) == 2
    err = capsys.readouterr().err
    assert "unknown --kind 'elementwize'; kinds: elementwise, reduction" in err
