"""The channel interface every channel type implements.

A channel takes unit-energy complex symbols ``x`` ``[batch, n]`` and a per-example SNR ``snr_db`` ``[batch]``
(Es/N0 in dB, see :mod:`simulator.core.snr`) and returns a :class:`ChannelOutput`: the equalised symbols
``[batch, n]``, the per-symbol effective noise variance ``[batch, n]`` (channel state information for learned
receivers), and the raw received signal with the channel state, for receivers that equalise themselves.

Channels are differentiable in ``x`` so that learned transmitters can be trained through them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from simulator.core.params import Params
from simulator.core.registry import Registry

if TYPE_CHECKING:
    import torch

# torch is imported where it is used: validating a scenario (semsim validate, list) resolves channel types without
# loading it


class ChannelOutput:
    """What a channel hands to a receiver.

    Attributes:
        symbols: ``[batch, n]`` complex64, equalised estimates of the transmitted symbols.
        no_eff: ``[batch, n]`` float32, effective noise variance of each estimate
            (AWGN: ``no``; flat fading with ZF: ``no / |h|^2``; OFDM: the equaliser's ``no_eff``).
        raw: the received signal before equalisation (``[batch, n]`` for flat channels, the resource grid for
            OFDM); see each channel's docstring.
        state: channel state by name (for example ``h`` ``[batch, n]`` for flat fading, ``no`` ``[batch]``).

    A channel whose ``raw`` and ``state`` cost more than the equalised symbols (OFDM builds whole resource grids
    for them) passes ``details``, a function returning ``(raw, state)``, instead: it runs the first time a
    receiver reads either attribute, and never when none does.
    """

    __slots__ = ("symbols", "no_eff", "_raw", "_state", "_details")

    def __init__(self, symbols: torch.Tensor, no_eff: torch.Tensor, raw: torch.Tensor | None = None,
                 state: dict[str, torch.Tensor] | None = None, *,
                 details: Callable[[], tuple[torch.Tensor | None, dict[str, torch.Tensor]]] | None = None):
        if details is not None and (raw is not None or state):
            raise ValueError("pass raw and state, or details that computes them, not both")
        self.symbols = symbols
        self.no_eff = no_eff
        self._raw = raw
        self._state = {} if state is None else state
        self._details = details

    @property
    def raw(self) -> torch.Tensor | None:
        self._materialise()
        return self._raw

    @property
    def state(self) -> dict[str, torch.Tensor]:
        self._materialise()
        return self._state

    @property
    def has_pending_details(self) -> bool:
        """Whether ``raw`` and ``state`` are still to be computed (nobody has read them yet)."""
        return self._details is not None

    def _materialise(self) -> None:
        if self._details is not None:
            details, self._details = self._details, None
            self._raw, self._state = details()

    def slice(self, start: int, stop: int) -> ChannelOutput:
        """Examples ``start:stop`` (every field is batch-first); pending details stay pending."""
        if start == 0 and stop >= self.symbols.shape[0]:
            return self
        if self._details is not None:
            return ChannelOutput(self.symbols[start:stop], self.no_eff[start:stop],
                                 details=lambda: _slice_details(self, start, stop))
        return ChannelOutput(self.symbols[start:stop], self.no_eff[start:stop], *_slice_details(self, start, stop))

    @classmethod
    def concat(cls, outputs: list[ChannelOutput]) -> ChannelOutput:
        """The outputs of consecutive chunks of one batch joined along the batch (every field is batch-first).

        Details still pending in any chunk stay pending: they are computed and joined on first use.
        """
        import torch

        if not outputs:
            raise ValueError("concat needs at least one channel output")
        if len(outputs) == 1:
            return outputs[0]
        symbols = torch.cat([o.symbols for o in outputs])
        no_eff = torch.cat([o.no_eff for o in outputs])
        # the joined output keeps each chunk's pending computation (or its details), not the chunks' symbols
        parts = [o._details or (lambda raw=o._raw, state=o._state: (raw, state)) for o in outputs]
        if any(o.has_pending_details for o in outputs):
            return cls(symbols, no_eff, details=lambda: _concat_details([part() for part in parts]))
        return cls(symbols, no_eff, *_concat_details([part() for part in parts]))

    def __repr__(self) -> str:
        pending = ", raw and state pending" if self._details is not None else ""
        return f"ChannelOutput(symbols={tuple(self.symbols.shape)}{pending})"


def _slice_details(output: ChannelOutput, start: int, stop: int):
    raw = output.raw
    return (None if raw is None else raw[start:stop]), {k: v[start:stop] for k, v in output.state.items()}


def _concat_details(parts: list[tuple[torch.Tensor | None, dict[str, torch.Tensor]]]):
    """``(raw, state)`` of consecutive chunks joined along the batch."""
    import torch

    raws = [raw for raw, _ in parts]
    raw = None if any(r is None for r in raws) else torch.cat(raws)
    states = [state for _, state in parts]
    return raw, {key: torch.cat([state[key] for state in states]) for key in states[0]}


class Channel(ABC):
    """A registered channel type, configured by its ``Params`` model.

    Subclasses implement :meth:`propagate`; :meth:`__call__` checks the inputs first.
    ``__init__`` builds the Sionna blocks on ``device`` (Sionna blocks do not move with ``.to()``).
    """

    type_name: ClassVar[str]
    description: ClassVar[str] = ""

    class Params(Params):
        pass

    def __init__(self, params: Params | None = None, device: str = "cpu"):
        self.params = params if params is not None else self.Params()
        self.device = str(device)

    def __call__(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        """Send ``x`` ``[batch, n]`` complex64 at per-example ``snr_db`` ``[batch]``."""
        import torch

        if x.dim() != 2 or not x.is_complex():
            raise ValueError(f"channel input must be complex [batch, n], got {tuple(x.shape)} {x.dtype}")
        snr_db = torch.as_tensor(snr_db, dtype=torch.float32, device=x.device)
        if snr_db.dim() == 0:
            snr_db = snr_db.expand(x.shape[0])
        if snr_db.shape != (x.shape[0],):
            raise ValueError(f"snr_db must have shape [batch]={x.shape[0]}, got {tuple(snr_db.shape)}")
        return self.propagate(x.to(torch.complex64), snr_db)

    @abstractmethod
    def propagate(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        """Channel proper: ``x`` ``[batch, n]`` complex64, ``snr_db`` ``[batch]`` float32."""

    def pilot_overhead(self, n: int) -> float:
        """Fraction of the resource elements used for ``n`` data symbols that carry pilots (0 for flat channels)."""
        return 0.0

    def fingerprint(self) -> str | None:
        """What determines this channel's output beyond its parameters (e.g. a hash of a measured channel file it
        replays), or ``None``. It enters the identity of every result on this channel, so changing it recomputes
        them instead of reusing stale rows."""
        return None

    def identity(self) -> dict[str, Any]:
        """Everything that makes this channel's output what it is: type, every parameter (defaults included) and
        :meth:`fingerprint`. It enters the cache key of every model trained through the channel, so a model
        trained through another channel, or another implementation of this one, is never reused."""
        return {"type": self.type_name, **self.params.model_dump(mode="json"), "fingerprint": self.fingerprint()}


CHANNELS = Registry("channel", entry_point_group="semsim.channels", base=Channel)
