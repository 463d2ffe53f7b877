"""The one exception type for bad user input.

Anything a user can get wrong (a scenario field, a path, a checkpoint, a CLI argument) raises :class:`UserError`
with one line that names what is wrong and what is allowed. The CLI prints that line and exits with status 2,
without a traceback.
"""


class UserError(Exception):
    """Bad user input; ``str(error)`` is the single line shown to the user."""

    exit_status = 2


def one_line(err: BaseException, limit: int = 300) -> str:
    """``str(err)`` on one line (whitespace collapsed), cut to ``limit`` characters: for quoting an error inside a
    :class:`UserError` message."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
