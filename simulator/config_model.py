"""Public path of the parameter model base (``from simulator.config_model import Params``); the code is
:mod:`simulator.core.params`."""

from simulator.core.params import Params

__all__ = ["Params"]
