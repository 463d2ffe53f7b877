"""Plug-in links for the Ray executor tests, referenced from scenarios as ``ray_plugins:ClassName``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from links.digital import DigitalLink


class DyingLink(DigitalLink):
    """The digital link, whose process dies (``os._exit``) the first time it samples while ``marker`` does not
    exist; it creates the marker first, so a retried task succeeds. Building the link never dies."""

    class Params(DigitalLink.Params):
        marker: str = Field(default="", description="file whose absence kills the process once")

    def sample(self, batch_index, batch_size, generator):
        marker = Path(self.params.marker) if self.params.marker else None
        if marker is not None and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().sample(batch_index, batch_size, generator)
