"""Subcommands of the ``tinygrad-lstm`` command line, one module each.

A module here defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
``tinygrad_lstm.tooling.cli`` discovers them, so adding a command never edits a shared file.
"""
