"""Base class for the parameter models of registered components (links, channels, data sources).

Each registered class declares ``Params``, a pydantic model of the YAML fields it accepts besides ``type`` and
``name``. Unknown fields are rejected so that a typo in a scenario is an error, not a silently ignored setting.
"""

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Strict parameter model: unknown fields are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True, allow_inf_nan=False)
