"""Public path of the user-facing error (``from simulator.errors import UserError``); the code is
:mod:`simulator.core.errors`."""

from simulator.core.errors import UserError, one_line

__all__ = ["UserError", "one_line"]
