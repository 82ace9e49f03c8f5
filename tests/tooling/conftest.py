"""Fixtures shared by the tooling tests."""

import sys

import pytest


@pytest.fixture
def registry_restored():
    """Whatever a test registers through --import is unregistered afterwards, and the
    modules and sys.path entries it added are gone."""
    from tinygrad_lstm.tooling import cli

    from tinygrad_lstm import registry

    saved = dict(registry._CELLS), dict(registry.OPS), dict(registry._OP_INFO)
    files, modules, path = dict(cli._imported_files), set(sys.modules), list(sys.path)
    yield
    sys.path[:] = path
    for table, before in zip((registry._CELLS, registry.OPS, registry._OP_INFO), saved):
        table.clear()
        table.update(before)
    cli._imported_files.clear()
    cli._imported_files.update(files)
    for name in set(sys.modules) - modules:
        del sys.modules[name]
