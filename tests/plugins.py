"""Links and channels used by the tests as user plug-ins, referenced from scenarios as ``plugins:ClassName``."""

from __future__ import annotations

from collections import Counter

import torch
from pydantic import Field

from links.digital import DigitalLink
from links.image_link import ImageLink
from simulator.channels.awgn import AWGNChannel
from simulator.config_model import Params
from simulator.errors import UserError
from simulator.link import Link
from simulator.metrics import Tally

CALLS: Counter = Counter()


class CountingLink(DigitalLink):
    """The digital link, counting how often the runner calls each stage."""

    def sample(self, batch_index, batch_size, generator):
        CALLS["sample"] += 1
        return super().sample(batch_index, batch_size, generator)

    def encode(self, batch):
        CALLS["encode"] += 1
        return super().encode(batch)

    def receive(self, received, snr_db):
        CALLS["receive"] += 1
        CALLS["received_examples"] += received.symbols.shape[0]
        return super().receive(received, snr_db)


class Bpsk64Link(Link):
    """Base of the toy links below: 64 random bits per example, one BPSK symbol each, scored by ``ber``."""

    metrics = ("ber",)

    @property
    def channel_uses(self) -> int:
        return 64

    def sample(self, batch_index, batch_size, generator):
        return {"bits": torch.randint(0, 2, (batch_size, 64), generator=generator)}

    def encode(self, batch):
        return {"symbols": (1.0 - 2.0 * batch["bits"].float()).to(torch.complex64)}

    def score(self, batch, estimate):
        return {"ber": Tally((batch["bits"] != estimate["bits"]).sum(dim=1), 64)}


class PhaseByLink(Bpsk64Link):
    """SNR-adaptive toy link: sends one BPSK symbol per bit rotated by a phase equal to the SNR in radians; the
    receiver undoes the rotation with its own per-example ``snr_db``. Wrong SNR bookkeeping garbles the bits."""

    description = "test link: SNR-dependent phase rotation"
    snr_adaptive = True

    def adapt_to_snr(self, encoded, snr_db):
        CALLS["adapt_to_snr"] += 1
        return encoded["symbols"] * torch.polar(torch.ones_like(snr_db), snr_db)[:, None]

    def receive(self, received, snr_db):
        derotated = received.symbols * torch.polar(torch.ones_like(snr_db), -snr_db)[:, None]
        return {"bits": (derotated.real < 0).long()}


class WrongShapeLink(DigitalLink):
    def encode(self, batch):
        return {"symbols": super().encode(batch)["symbols"][:, :-1]}


class WrongPowerLink(DigitalLink):
    def encode(self, batch):
        return {"symbols": 2.0 * super().encode(batch)["symbols"]}


class RaisingLink(DigitalLink):
    def receive(self, received, snr_db):
        raise RuntimeError("decoder exploded")


class NotALink:
    pass


class Complex128Link(DigitalLink):
    """Right shape and power, but double-precision symbols."""

    def encode(self, batch):
        return {"symbols": super().encode(batch)["symbols"].to(torch.complex128)}


class TensorEstimateLink(DigitalLink):
    """``receive`` returns the bits tensor itself instead of a dict of tensors."""

    def receive(self, received, snr_db):
        return super().receive(received, snr_db)["bits"]


class ShortEstimateLink(DigitalLink):
    """``receive`` drops the last example of every call."""

    def receive(self, received, snr_db):
        return {"bits": super().receive(received, snr_db)["bits"][:-1]}


class ShortTallyLink(DigitalLink):
    """``score`` counts one example too few (its trials would be miscounted if accepted)."""

    def score(self, batch, estimate):
        return {name: Tally(t.count[:-1], t.trials) for name, t in super().score(batch, estimate).items()}


class ColumnPredictionLink(ImageLink):
    """Image link whose receiver returns predictions ``[batch, 1]`` instead of ``[batch]`` (a broadcasting trap:
    comparing them with the labels ``[batch]`` gives a ``[batch, batch]`` table)."""

    @property
    def channel_uses(self) -> int:
        return 4

    def encode(self, batch):
        return {"symbols": torch.ones(batch["images"].shape[0], 4, dtype=torch.complex64)}

    def receive(self, received, snr_db):
        return {"prediction": torch.zeros(received.symbols.shape[0], 1, dtype=torch.int64)}


class RunsOutLink(DigitalLink):
    """The digital link, failing from the second Monte-Carlo batch on."""

    def sample(self, batch_index, batch_size, generator):
        if batch_index >= 1:
            raise RuntimeError("out of test data")
        return super().sample(batch_index, batch_size, generator)


class PatternLink(Link):
    """Test link whose outcomes are fixed in advance: example ``i`` (counted from batch 0, as every link of a
    scenario counts them) is classified wrongly exactly when ``i % wrong_every == 0`` (never when ``wrong_every``
    is 0), whatever the channel and SNR. Metric ``accuracy``, one trial per example."""

    description = "test link: accuracy outcomes fixed by the example index"
    metrics = ("accuracy",)

    class Params(Params):
        wrong_every: int = Field(default=0, ge=0)
        symbols: int = Field(default=4, ge=1)

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def sample(self, batch_index, batch_size, generator):
        return {"index": batch_index * batch_size + torch.arange(batch_size)}

    def encode(self, batch):
        return {"symbols": torch.ones(batch["index"].shape[0], self.params.symbols, dtype=torch.complex64)}

    def receive(self, received, snr_db):
        return {"prediction": torch.zeros(received.symbols.shape[0], dtype=torch.int64)}

    def score(self, batch, estimate):
        every = self.params.wrong_every
        wrong = batch["index"] % every == 0 if every else torch.zeros_like(batch["index"], dtype=torch.bool)
        return {"accuracy": Tally((~wrong).long(), 1)}


class AnalogMSELink(Link):
    """QPSK symbols sent as they are and estimated by the equalised received symbol: each example's ``mse`` is
    the mean ``|y - x|^2`` over its symbols, whose expectation on AWGN is ``no = 10**(-snr_db/10)``; ``psnr`` is
    the per-example PSNR of the real parts against a peak of 1."""

    description = "test link: analog symbols scored by mean squared error"
    metrics = ("mse", "psnr")

    class Params(Params):
        symbols: int = Field(default=16, ge=1)

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    def sample(self, batch_index, batch_size, generator):
        bits = torch.randint(0, 2, (batch_size, self.params.symbols, 2), generator=generator)
        return {"x": torch.complex(1 - 2 * bits[..., 0].float(), 1 - 2 * bits[..., 1].float()) / 2**0.5}

    def encode(self, batch):
        return {"symbols": batch["x"]}

    def receive(self, received, snr_db):
        return {"y": received.symbols}

    def score(self, batch, estimate):
        from simulator.metrics import Mean, mse_per_example, psnr_db

        error = torch.view_as_real(estimate["y"] - batch["x"])
        return {"mse": Mean(2 * mse_per_example(error, torch.zeros_like(error))),  # |.|^2 = 2 x mean of squares
                "psnr": Mean(psnr_db(estimate["y"].real, batch["x"].real))}


class FractionalTallyLink(AnalogMSELink):
    """Reports a continuous error as a proportion: the defect a Tally must refuse (floats would be truncated)."""

    metrics = ("ber",)

    def score(self, batch, estimate):
        return {"ber": Tally((estimate["y"] - batch["x"]).abs().pow(2).mean(dim=1), 1)}


class UnknownMetricLink(AnalogMSELink):
    metrics = ("evm_percent",)


class InterruptedLink(DigitalLink):
    """The digital link, interrupted (as by Ctrl-C) in its third receiver call of a run."""

    def receive(self, received, snr_db):
        self._calls = getattr(self, "_calls", 0) + 1
        if self._calls >= 3:
            raise KeyboardInterrupt
        return super().receive(received, snr_db)


class RefusingLink(DigitalLink):
    """A constructor that rejects its settings with a :class:`UserError` that does not name the link."""

    def __init__(self, params=None, context=None):
        raise UserError("block_bits must be a multiple of 3 for this decoder")


class CrashingLink(DigitalLink):
    """A constructor that fails with an ordinary exception (a missing file, say)."""

    def __init__(self, params=None, context=None):
        raise FileNotFoundError("weights.safetensors")


class SelfNamingLink(DigitalLink):
    """A constructor whose error already names the link by the label the tests give it (``named``)."""

    def __init__(self, params=None, context=None):
        raise UserError("link 'named': no weights for 7 symbols")


class RefusingChannel(AWGNChannel):
    """A channel whose constructor rejects its settings."""

    def __init__(self, params=None, device="cpu"):
        raise UserError("needs a GPU")


class WeightFileLink(Bpsk64Link):
    """A plug-in whose receiver reads its one "weight" (a decision threshold) from a file named in its parameters:
    BPSK bits decided by ``real(y) > threshold``. It fingerprints the file, so new weights mean new results."""

    description = "test link: BPSK with a decision threshold read from a weight file"

    class Params(Params):
        weights: str = Field(min_length=1)

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        with open(self.params.weights, encoding="utf-8") as handle:
            self.threshold = float(handle.read())

    def fingerprint(self):
        from simulator.io.artifacts import file_fingerprint

        return file_fingerprint(self.params.weights)

    def receive(self, received, snr_db):
        return {"bits": (received.symbols.real < self.threshold).long()}


class ConvReceiverLink(AnalogMSELink):
    """QPSK symbols received by a small fixed random CNN (the 64 real parts of 32 symbols as an 8x8 image), scored
    by the ``mse`` of its output against the sent symbols. CPU convolutions and matrix products give results
    that differ in their last bits with the torch thread count and with how many examples share a call, so
    this link shows whether the runner keeps both fixed."""

    description = "test link: analog symbols through a fixed random CNN receiver"
    metrics = ("mse",)

    class Params(Params):
        symbols: int = Field(default=32, ge=32, le=32)

    def __init__(self, params, context):
        super().__init__(params, context)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(
                torch.nn.Conv2d(1, 48, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(48, 48, 3, padding=1),
                torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(48 * 64, 64))

    def receive(self, received, snr_db):
        reals = torch.view_as_real(received.symbols).reshape(-1, 1, 8, 8)
        return {"y": torch.view_as_complex(self.net(reals).reshape(-1, 32, 2).contiguous())}

    def score(self, batch, estimate):
        from simulator.metrics import Mean, mse_per_example

        error = torch.view_as_real(estimate["y"] - batch["x"])
        return {"mse": Mean(mse_per_example(error, torch.zeros_like(error)))}


class LegacyModulateLink(DigitalLink):
    """A link written for the old protocol, with a ``modulate`` step."""

    def modulate(self, encoded, snr_db):
        return encoded["symbols"]


class NoSymbolsLink(DigitalLink):
    """``encode`` forgets to return the symbols."""

    def encode(self, batch):
        return {"coded": super().encode(batch)["symbols"]}
