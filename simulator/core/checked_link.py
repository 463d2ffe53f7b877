"""The link protocol, checked: :class:`CheckedLink` wraps a link so that every call it makes is checked against
the contract of :mod:`simulator.core.link`, and anything a link raises becomes one line naming the link.

The Monte-Carlo runner drives links only through it, and it works on its own, for a plug-in author checking a
new link in a notebook or a test::

    checked = CheckedLink(MyLink(), "mine")
    batch = checked.sample(0, 8, generator)
    encoded = checked.encode(batch)
    symbols = checked.transmit(encoded, snr_db)     # [8, n] complex64, unit energy per example, checked
    output = channel(symbols, snr_db)
    estimate = checked.receive(output, snr_db)      # dict of tensors with 8 rows, checked
    scores = checked.score(batch, estimate)         # {metric: Tally or Mean}, checked

``semsim validate --build`` runs one such batch per link (:func:`probe`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from simulator.core.errors import UserError
from simulator.core.link import Link, TensorDict
from simulator.core.metrics import METRICS, Mean, Tally
from simulator.core.seeding import derive_seed, seeded

if TYPE_CHECKING:
    from simulator.core.channel import Channel

#: relative tolerance on the batch-average symbol energy a transmitter must meet (unit energy per example).
POWER_TOLERANCE = 0.1


class LinkError(UserError):
    """A link broke the link protocol (wrong shape, dtype or power, or it raised)."""


class CheckedLink:
    """``link`` with every protocol call checked; ``label`` names it in errors."""

    def __init__(self, link: Link, label: str):
        legacy = next((k.__name__ for k in type(link).__mro__ if k is not Link and "modulate" in vars(k)), None)
        if legacy is not None:
            raise LinkError(f"link {label!r}: {legacy}.modulate() is no longer part of the link protocol: return "
                            "the channel symbols from encode() as encoded['symbols'], or, for a transmitter that "
                            "depends on the SNR, set snr_adaptive = True and implement adapt_to_snr(encoded, "
                            "snr_db)")
        self.link = link
        self.label = label

    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        """The payload of batch ``batch_index``: a dict of tensors with ``batch_size`` rows."""
        batch = _call(self.label, "sample", self.link.sample, batch_index, batch_size, generator)
        check_rows(self.label, "sample", batch, batch_size)
        return batch

    def encode(self, batch: TensorDict) -> TensorDict:
        """The SNR-independent transmitter output: a dict of tensors."""
        encoded = _call(self.label, "encode", self.link.encode, batch)
        if not isinstance(encoded, dict):
            raise LinkError(f"link {self.label!r}: encode() must return a dict of tensors, got "
                            f"{type(encoded).__name__}")
        return encoded

    def transmit(self, encoded: TensorDict, snr_db: torch.Tensor | None = None,
                 examples: int | None = None) -> torch.Tensor:
        """The channel symbols ``[batch, n]``: ``encoded["symbols"]`` (``examples`` rows when given), or, for an
        SNR-adaptive link, ``adapt_to_snr(encoded, snr_db)`` with ``snr_db`` ``[batch]`` in dB."""
        if self.link.snr_adaptive:
            if snr_db is None:
                raise ValueError("an SNR-adaptive link needs snr_db to transmit")
            symbols = _call(self.label, "adapt_to_snr", self.link.adapt_to_snr, encoded, snr_db)
            check_symbols(self.label, symbols, int(snr_db.shape[0]), self.link.channel_uses, "adapt_to_snr()")
            return symbols
        if "symbols" not in encoded:
            raise LinkError(f"link {self.label!r}: encode() returned no 'symbols' (keys: "
                            f"{', '.join(map(repr, encoded)) or 'none'}); a link whose transmitter does not "
                            "depend on the SNR returns its channel symbols as encoded['symbols']")
        symbols = encoded["symbols"]
        if examples is None:
            examples = int(symbols.shape[0]) if isinstance(symbols, torch.Tensor) and symbols.dim() else 0
        check_symbols(self.label, symbols, examples, self.link.channel_uses)
        return symbols

    def receive(self, received, snr_db: torch.Tensor) -> TensorDict:
        """The receiver's estimates: a dict of tensors with one row per example of ``snr_db``."""
        estimate = _call(self.label, "receive", self.link.receive, received, snr_db)
        check_rows(self.label, "receive", estimate, int(snr_db.shape[0]))
        return estimate

    def score(self, batch: TensorDict, estimate: TensorDict, metrics: tuple[str, ...] | None = None
              ) -> dict[str, Tally | Mean]:
        """Per-example counts or values of ``metrics`` (default: every metric the link declares)."""
        batch_size = next(iter(batch.values())).shape[0]
        scores = _call(self.label, "score", self.link.score, batch, estimate)
        if not isinstance(scores, dict):
            raise LinkError(f"link {self.label!r}: score() must return a dict of metric -> Tally or Mean, "
                            f"got {type(scores).__name__}")
        for metric in metrics if metrics is not None else self.link.metrics:
            if metric not in scores:
                raise LinkError(f"link {self.label!r}: score() returned no {metric!r} (it declared "
                                f"{self.link.metrics})")
            if METRICS.resolve(metric).kind == "mean":
                check_mean(self.label, metric, scores[metric], batch_size)
            else:
                check_tally(self.label, metric, scores[metric], batch_size)
        return scores


def probe(link: Link, label: str, channel: Channel, snr_db: float, batch_size: int = 8,
          seed: int = 0) -> dict[str, float]:
    """One batch of ``batch_size`` examples through ``link`` and ``channel`` at ``snr_db``, every call checked;
    returns each declared metric's value on it (a proportion's count / trials, a mean's mean)."""
    checked = CheckedLink(link, label)
    device = getattr(link, "device", "cpu")
    with torch.no_grad():
        with seeded(derive_seed(seed, "probe"), device) as generator:
            batch = checked.sample(0, batch_size, generator)
        snr = torch.full((batch_size,), float(snr_db), dtype=torch.float32, device=device)
        encoded = checked.encode(batch)
        symbols = checked.transmit(encoded, snr if link.snr_adaptive else None, batch_size)
        with seeded(derive_seed(seed, "probe-channel"), device):
            output = channel(symbols, snr)
        scores = checked.score(batch, checked.receive(output, snr))
    values = {}
    for metric in link.metrics:
        score = scores[metric]
        if isinstance(score, Mean):
            values[metric] = float(score.values.double().mean())
        else:
            count, trials = score.totals()
            values[metric] = count / trials if trials else math.nan
    return values


def check_rows(link_label: str, what: str, tensors: object, examples: int) -> None:
    """A ``what()`` result (the payload, the receiver's estimate) must be a non-empty dict of tensors with
    ``examples`` rows each."""
    if not isinstance(tensors, dict) or not tensors:
        raise LinkError(f"link {link_label!r}: {what}() must return a dict of tensors with one row per example, "
                        f"got {type(tensors).__name__}")
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != examples:
            got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise LinkError(f"link {link_label!r}: {what}() returned {key!r} of {got}; expected {examples} examples "
                            "along the first dimension")


def check_symbols(link_label: str, symbols: object, batch_size: int, n: int,
                  source: str = "encode()['symbols']") -> None:
    """Enforce the transmitter contract: complex64 ``[batch, n]``, finite, unit average energy per example;
    ``source`` says where the symbols came from (``encode()['symbols']`` or ``adapt_to_snr()``)."""
    where = f"link {link_label!r}: {source}"
    if not isinstance(symbols, torch.Tensor):
        raise LinkError(f"{where} must be a torch.Tensor, got {type(symbols).__name__}")
    if symbols.dtype != torch.complex64:
        raise LinkError(f"{where} is {symbols.dtype}; expected complex64 symbols")
    if tuple(symbols.shape) != (batch_size, n):
        raise LinkError(f"{where} has shape {tuple(symbols.shape)}; expected [batch, channel_uses] = "
                        f"[{batch_size}, {n}]")
    energy = symbols.detach().abs().pow(2).mean(dim=1)
    if not torch.isfinite(energy).all():
        raise LinkError(f"{where} holds non-finite symbols")
    mean = float(energy.mean())
    if not math.isclose(mean, 1.0, rel_tol=POWER_TOLERANCE):
        raise LinkError(f"{where}: symbols have average energy {mean:.3g} per example; expected 1 (normalise each "
                        f"example to unit average energy, e.g. simulator.core.snr.normalize_energy; tolerance "
                        f"{POWER_TOLERANCE:.0%})")


def check_tally(link_label: str, metric: str, tally: object, batch_size: int) -> None:
    """Enforce the scoring contract: a :class:`Tally` with one count per example, ``0 <= count <= trials``."""
    if not isinstance(tally, Tally):
        hint = " (a proportion metric takes per-example counts)" if isinstance(tally, Mean) else ""
        raise LinkError(f"link {link_label!r}: score() returned {type(tally).__name__} for {metric!r}; expected a "
                        f"simulator.core.metrics.Tally{hint}")
    count, trials = tally.count, tally.trials
    trials_ok = not isinstance(trials, torch.Tensor) or trials.dim() == 0 or tuple(trials.shape) == (batch_size,)
    if not isinstance(count, torch.Tensor) or tuple(count.shape) != (batch_size,) or not trials_ok:
        shape = tuple(count.shape) if isinstance(count, torch.Tensor) else type(count).__name__
        raise LinkError(f"link {link_label!r}: score() returned {metric!r} counts of shape {shape}; expected "
                        f"[batch] = [{batch_size}] (one count per example; check the shape receive() returns)")
    if (count.is_floating_point() or count.is_complex()) and not bool((count == count.real.round()).all()):
        raise LinkError(f"link {link_label!r}: score() returned fractional {metric!r} counts; a Tally counts whole "
                        "errors or successes (for a continuous quantity report a mean metric such as mse or psnr "
                        "with Mean(values))")
    if (count < 0).any() or (count > trials).any():
        raise LinkError(f"link {link_label!r}: score() returned {metric!r} counts outside [0, trials]")


def check_mean(link_label: str, metric: str, mean: object, batch_size: int) -> None:
    """Enforce the scoring contract of a mean metric: :class:`Mean` of ``[batch]`` finite floats."""
    if not isinstance(mean, Mean):
        got = type(mean).__name__
        hint = " (a mean metric takes one float per example: return Mean(values))" if isinstance(mean, Tally) else ""
        raise LinkError(f"link {link_label!r}: score() returned {got} for {metric!r}; expected a "
                        f"simulator.core.metrics.Mean{hint}")
    values = mean.values
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (batch_size,) or values.is_complex():
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise LinkError(f"link {link_label!r}: score() returned {metric!r} values of shape {shape}; expected real "
                        f"[batch] = [{batch_size}] (one value per example)")
    if not torch.isfinite(values).all():
        raise LinkError(f"link {link_label!r}: score() returned non-finite {metric!r} values")


def _call(link_label: str, what: str, fn, *args) -> TensorDict:
    """Call a link method; turn an exception raised inside a user's link into a one-line :class:`LinkError`."""
    try:
        return fn(*args)
    except UserError:
        raise
    except Exception as err:  # the link is user code: report it by name instead of a traceback
        raise LinkError(f"link {link_label!r}: {what}() raised {type(err).__name__}: {err}") from err
