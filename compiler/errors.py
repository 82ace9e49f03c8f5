"""Why a cell does not compile: ``NotFusible`` (the step uses something the compiler cannot
prove equal to composed) and ``CompilerError`` (a stage of the compiler itself failed).

Both leave the cell running composed; only the second is the compiler's fault, and says so.
"""

from __future__ import annotations

__all__ = ["CompilerError", "NotFusible"]


class NotFusible(ValueError):
    """A cell's step cannot be compiled; the message names the op, value or line that
    blocked it, and what to write instead."""


class CompilerError(RuntimeError):
    """A stage of the compiler failed on a step it had accepted: a bug of the compiler, not
    of the cell. ``stage`` names the stage ("capture", "code generation", ...)."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage, self.cause = stage, cause
        super().__init__(
            f"internal compiler error in {stage} ({type(cause).__name__}: {cause}); "
            "please report it with the output of `tinygrad-lstm fuse --cell NAME`"
        )
