"""Progress reporting: a tqdm bar on a terminal, one plain log line per finished point otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


class SweepProgress:
    """Counts simulated examples against the sweep's budget and announces finished points.

    ``bar``: ``True`` for a progress bar, ``False`` for plain lines, ``None`` for a bar only on a terminal.
    """

    def __init__(self, total: int, bar: bool | None = None, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.bar_enabled = self.stream.isatty() if bar is None else bar
        self._bar = tqdm(total=total, unit="ex", file=self.stream, dynamic_ncols=True) if self.bar_enabled else None

    def advance(self, examples: int) -> None:
        if self._bar is not None and examples:
            self._bar.update(examples)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
