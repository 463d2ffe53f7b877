"""semsim's engine: channels, the link protocol and registry, the Monte-Carlo runner, scenarios, sweeps, results.

The data flow is ``scenario -> sweep -> link -> channel -> metric -> table``; the engine never imports a specific
link, links register themselves (see :mod:`simulator.core.registry`).
"""

__version__ = "0.1.0"
