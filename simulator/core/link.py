"""The link protocol: what a link type implements to be simulated by semsim.

A link is ``source -> transmitter -> channel -> receiver -> metrics``. The Monte-Carlo runner drives it::

    batch    = link.sample(batch_index, batch_size, generator)   # payload: bits, or images and labels
    encoded  = link.encode(batch)                                 # SNR-independent transmitter work, once per batch
    symbols  = encoded["symbols"]                                 # [batch, n] complex64, unit energy per example
    received = channel(symbols, snr_db)                           # simulator.channels.ChannelOutput
    estimate = link.receive(received, snr_db)                     # receiver
    tallies  = link.score(batch, estimate)                        # {metric: Tally or Mean}, per example

Sweeps are cheap per point because the runner calls ``sample`` and ``encode`` once per Monte-Carlo batch and
reuses the result for every channel and SNR point. A transmitter that depends on the SNR (``snr_adaptive =
True``) puts its SNR-independent part in ``encode`` and its SNR-dependent last step in ``adapt_to_snr(encoded,
snr_db)``, which the runner calls per point with ``snr_db`` ``[batch]`` in dB and which returns the symbols.
``receive`` gets ``snr_db`` per example too. Every call is checked against this contract
(:class:`simulator.core.checked_link.CheckedLink`); symbols are normalised with
:func:`simulator.core.snr.normalize_energy`.

Payloads, encodings and estimates are dicts of tensors whose first dimension is the batch.
Links register through the ``semsim.links`` entry-point group (see ``pyproject.toml``) or are named in YAML by
``module:Class``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from simulator.core.channel import ChannelOutput
from simulator.core.errors import UserError
from simulator.core.metrics import Mean, Tally
from simulator.core.params import Params
from simulator.core.registry import Registry

if TYPE_CHECKING:
    import torch

TensorDict: TypeAlias = "dict[str, torch.Tensor]"


@dataclass
class LinkContext:
    """What a link gets from the scenario besides its own parameters.

    Attributes:
        device: torch device string (``cpu``, ``cuda``, ``cuda:N``).
        seed: the scenario seed (for links that train or draw fixed random structures).
        data: the scenario's data source, or ``None`` when it names none.

    Links that train keep their artifacts in :func:`simulator.io.artifacts.cache_root`.
    """

    device: str = "cpu"
    seed: int = 0
    data: Any = None

    def require_data(self, link_type: str) -> Any:
        """The data source, or a :class:`UserError` telling the user to add one (for links that send images)."""
        if self.data is None:
            raise UserError(f"link type {link_type} needs images: add a data source to the scenario, e.g. "
                            "`data: {type: digits}`")
        return self.data


class Link(ABC):
    """Base class of every link type. See the module docstring for the call sequence."""

    type_name: ClassVar[str]
    description: ClassVar[str] = ""
    #: metrics this link reports; the first one drives the Monte-Carlo stopping rule.
    metrics: ClassVar[tuple[str, ...]] = ()
    #: whether the transmitter depends on the SNR: then the runner calls :meth:`adapt_to_snr` per SNR point for
    #: the symbols, instead of taking ``encode(batch)["symbols"]`` once per batch (a link may set it per instance).
    snr_adaptive: ClassVar[bool] = False

    class Params(Params):
        pass

    def __init__(self, params: Params | None = None, context: LinkContext | None = None):
        self.params = params if params is not None else self.Params()
        self.context = context if context is not None else LinkContext()
        self.device = self.context.device

    @property
    @abstractmethod
    def channel_uses(self) -> int:
        """Complex channel symbols per example, ``n``."""

    @property
    def receive_batch_hint(self) -> int | None:
        """Largest number of examples the receiver handles efficiently in one call, or ``None`` for no limit.

        The runner cuts a point's batch into equal receiver calls (and, for an SNR-adaptive link, ``adapt_to_snr``
        calls) of at most this size and at most the scenario's ``monte_carlo.max_receiver_batch``. It is part of
        the link's code, so a link's results may depend on it only through the thread count (its numerics).
        """
        return None

    @property
    def info_bits(self) -> int | None:
        """Information bits per example, for Eb/N0; ``None`` for links that do not carry counted bits."""
        return None

    @abstractmethod
    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        """Payload of Monte-Carlo batch ``batch_index``; draw randomness only from ``generator``."""

    @abstractmethod
    def encode(self, batch: TensorDict) -> TensorDict:
        """SNR-independent transmitter work, run once per batch.

        Returns a dict of tensors; unless the link is :attr:`snr_adaptive`, it holds the channel symbols as
        ``"symbols"``: ``[batch, n]`` complex64 with unit average energy per example.
        """

    def adapt_to_snr(self, encoded: TensorDict, snr_db: torch.Tensor) -> torch.Tensor:
        """SNR-adaptive links only: the channel symbols ``[batch, n]`` complex64 (unit average energy per example)
        from ``encode``'s output and the SNR ``snr_db`` ``[batch]`` in dB, which may differ per example."""
        raise NotImplementedError(f"{type(self).__name__} sets snr_adaptive but does not implement adapt_to_snr")

    @abstractmethod
    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        """Receiver: estimates from the channel output; ``snr_db`` ``[batch]`` may differ per example."""

    @abstractmethod
    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally | Mean]:
        """For each metric in :attr:`metrics`: per-example counts (:class:`~simulator.core.metrics.Tally`) for a
        proportion, per-example values (:class:`~simulator.core.metrics.Mean`) for a mean metric."""

    def fingerprint(self) -> str | None:
        """What determines this link's results beyond its parameters, or ``None`` (the default).

        A link whose numbers depend on files (trained weights) or code that its parameters do not name returns
        a string that changes when they change, e.g. ``simulator.io.artifacts.file_fingerprint(weights_path)``.
        It enters the identity of each of the link's results (``point_id``), so a sweep recomputes the points of
        a link whose weights changed instead of reusing its old rows. The built-in learned links return the
        fingerprint of their trained artifacts.
        """
        return None

    def describe(self) -> dict[str, Any]:
        """Facts for the link table (channel uses, rates, parameter counts); override to add more.

        Links with learned or heavy parts report the comparison keys ``tx_parameters``, ``tx_macs``,
        ``rx_parameters``, ``rx_macs``: parameters and multiply-accumulates per image of the transmitter and of
        the receiver (conv and linear layers, :func:`links.complexity.count_macs`; FLOPs are about 2 x MACs).
        """
        return {"channel_uses": self.channel_uses, "info_bits": self.info_bits}


LINKS = Registry("link", entry_point_group="semsim.links", base=Link)
