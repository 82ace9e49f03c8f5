"""The ``tinygrad-lstm`` command line (tooling layer).

Each subcommand lives in its own module in ``tinygrad_lstm.tooling.commands`` and is discovered
here. A bad argument or a user-level failure is one clear line on stderr and exit code 2,
not a traceback.

Every command takes ``--import FILE_OR_MODULE`` (repeatable): the file or module is imported
before the command runs, so a cell or op that a script registers is visible to ``train``,
``bptt``, ``gradcheck``, ... exactly like an installed plugin's. A module name is looked up
in the current directory first, as under ``python -m``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from tinygrad_lstm import registry
from tinygrad_lstm.registry import UNKNOWN_NAME_HINT

from . import commands

__all__ = ["CommandError", "build_parser", "import_user_code", "main"]


class CommandError(Exception):
    """A user-facing failure of a subcommand: printed as one line, exit status 2."""


def _command_modules() -> Iterator[ModuleType]:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message}")


def _import_option() -> argparse.ArgumentParser:
    """The ``--import`` option every command shares (an argparse parent parser)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="FILE_OR_MODULE",
        help="import this Python file (path) or module (dotted name, looked up in the "
        "current directory first, as python -m does) first, so the cells and ops it "
        "registers can be named; repeatable",
    )
    return parent


# Resolved file paths imported by --import in this process: a second import of the same
# script would register its cell twice.
_imported_files: dict[Path, str] = {}


def import_user_code(spec: str) -> None:
    """Import ``spec``: a path to a ``.py`` file (loaded as a module named after the file)
    or a dotted module name (``importlib.import_module``, with the current directory
    searched first, as ``python -m`` does). Raises ``CommandError`` in one line when the
    import fails, ``sys.exit()`` included; whatever the failed import registered is
    unregistered, as a failed plugin's is."""
    path = Path(spec)
    try:
        with _registrations_undone_on_failure():
            if _is_module_name(spec) and not path.is_file():
                _import_module(spec)
            elif path.is_dir():
                raise CommandError(
                    f"--import {spec}: is a directory; give a .py file, or a package's module "
                    "name from the directory that holds it"
                )
            elif not path.is_file():
                raise CommandError(f"--import {spec}: no such file")
            else:
                _import_file(path.resolve())
    except CommandError:
        raise
    except SystemExit as exc:
        raise CommandError(
            f"--import {spec}: the imported code called sys.exit({exc.code!r}); "
            "a script meant for --import registers its cells and ops at import and runs "
            "nothing else (guard the rest with if __name__ == '__main__')"
        ) from None
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises is reported
        raise CommandError(f"--import {spec}: {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def _registrations_undone_on_failure() -> Iterator[None]:
    # The same undo as registry.load_plugins: half an imported script is worse than none.
    tables = (registry.OPS, registry._OP_INFO, registry._CELLS)
    before = [dict(table) for table in tables]
    try:
        yield
    except BaseException:
        for table, saved in zip(tables, before):
            table.clear()
            table.update(saved)
        raise


def _is_module_name(spec: str) -> bool:
    """A dotted name (``pkg.cells``), and not a path that exists as something else: a
    package directory in the current directory is imported by name, as ``python -m`` would."""
    if not all(part.isidentifier() for part in spec.split(".")) or spec.endswith(".py"):
        return False
    path = Path(spec)
    return not path.is_dir() or (path / "__init__.py").is_file()


def _import_module(name: str) -> None:
    # The console script's sys.path[0] is its own bin/ folder; `python -m` puts the current
    # directory there, and --import must find a package beside the user either way.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    importlib.import_module(name)


def _import_file(path: Path) -> None:
    if path in _imported_files:
        return
    name = path.stem if path.stem.isidentifier() else "user_module"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # what dataclasses and pickle look a class's module up in
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _imported_files[path] = name


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per command module."""
    parser = _Parser(
        prog="tinygrad-lstm",
        description="Autograd, BPTT and recurrent layers composed from primitives.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    shared = [_import_option()]
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP, parents=shared)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "_run", None) is None:
            parser.print_help()
            return 2
        for spec in args.imports:
            import_user_code(spec)
        return int(args._run(args) or 0)
    except CommandError as exc:
        print(f"error: {_with_hint(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (``| head``) went away; stop quietly as Unix tools do.
        sys.stderr.close()
        return 0


def _with_hint(message: str) -> str:
    """Add how to make a name visible to an "unknown cell/op" message that lacks it (a
    command may phrase that message itself)."""
    if ("unknown cell" in message or "unknown op" in message) and "--import" not in message:
        return f"{message}. {UNKNOWN_NAME_HINT}"
    return message


if __name__ == "__main__":
    sys.exit(main())
