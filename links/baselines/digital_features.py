"""The ``digital-features`` link: the student embedding quantised to bits, 5G LDPC, QAM, classified at the receiver."""

from __future__ import annotations

import math
from typing import Any

import torch

from links.baselines.features import PCA, prepare_features
from links.bits_link import BitsLink
from links.complexity import count_macs, count_parameters
from links.declarations import DigitalFeaturesDeclaration
from links.image_link import ImageLink
from links.modem import CodedModem
from links.params import LDPC_K_MAX, LDPC_K_MIN, LDPCParams, ldpc_supported
from simulator.core.channel import ChannelOutput
from simulator.core.errors import UserError
from simulator.core.link import TensorDict
from simulator.core.metrics import Tally
from simulator.core.seeding import derive_seed

#: bits per component tried when choosing the quantiser
BIT_CHOICES = tuple(range(1, 9))
#: the quantiser's range per component: these percentiles of the training-split coefficients (values are clipped)
CLIP_PERCENTILES = (0.5, 99.5)


class UniformQuantiser:
    """Per-component uniform scalar quantiser: ``2**bits`` equal cells on ``[low, high]``, values clipped.

    ``indices`` ``[B, c]`` float -> ``[B, c]`` int64 in ``0 .. 2**bits - 1``; ``values`` maps indices to the cell
    midpoints; ``to_bits``/``from_bits`` convert indices to ``[B, c * bits]`` float bits (natural binary, most
    significant bit first) and back.
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor, bits: int):
        self.low, self.bits = low, bits
        self.step = ((high - low) / 2**bits).clamp_min(1e-12)

    @classmethod
    def fit(cls, coefficients: torch.Tensor, bits: int) -> UniformQuantiser:
        """Range per component from the :data:`CLIP_PERCENTILES` of ``coefficients`` ``[N, c]``."""
        low, high = (percentile(coefficients, p) for p in CLIP_PERCENTILES)
        return cls(low, high, bits)

    def indices(self, x: torch.Tensor) -> torch.Tensor:
        return torch.floor((x - self.low) / self.step).clamp(0, 2**self.bits - 1).long()

    def values(self, indices: torch.Tensor) -> torch.Tensor:
        return self.low + (indices.to(self.low.dtype) + 0.5) * self.step

    def to_bits(self, indices: torch.Tensor) -> torch.Tensor:
        shifts = torch.arange(self.bits - 1, -1, -1, device=indices.device)
        return ((indices.unsqueeze(-1) >> shifts) & 1).reshape(len(indices), -1).float()

    def from_bits(self, bits: torch.Tensor) -> torch.Tensor:
        weights = 2 ** torch.arange(self.bits - 1, -1, -1, device=bits.device)
        return (bits.reshape(len(bits), -1, self.bits).long() * weights).sum(dim=-1)

    @property
    def parameters(self) -> int:
        """Stored numbers: low and step per component."""
        return 2 * self.low.numel()


def percentile(x: torch.Tensor, p: float) -> torch.Tensor:
    """The ``p``-th percentile (0..100) of ``x`` ``[N, c]`` along the first axis ``[c]``, interpolating linearly
    between order statistics (numpy's default; unlike ``torch.quantile``, without a limit on the size)."""
    ordered = x.sort(dim=0).values
    position = p / 100 * (len(x) - 1)
    below = math.floor(position)
    above = min(below + 1, len(x) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


def ldpc_blocks(symbols: int, bits_per_symbol: int, code_rate: float) -> tuple[int, LDPCParams]:
    """Codewords per example and their code for ``symbols`` channel uses of 2^m-QAM at ``code_rate``.

    Uses the fewest (longest) equal codewords whose symbols fill ``symbols`` exactly and that 5G LDPC supports;
    each has ``n = symbols / blocks * m`` bits and ``k = floor(n * code_rate)`` information bits, so the
    information bits never exceed ``floor(symbols * m * code_rate)``. Raises :class:`UserError` if none fits.
    """
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    for blocks in (b for b in range(1, symbols + 1) if symbols % b == 0):
        n = symbols // blocks * bits_per_symbol
        k = math.floor(n * code_rate + 1e-9)
        if not ldpc_supported(n, k, max_rate=1.0):
            continue
        try:
            LDPC5GEncoder(k, n, num_bits_per_symbol=bits_per_symbol)
        except ValueError:
            continue
        return blocks, LDPCParams(k=k, n=n)
    raise UserError(
        f"digital-features: symbols ({symbols}) x bits_per_symbol ({bits_per_symbol}) x code_rate ({code_rate}) "
        f"cannot be coded by 5G LDPC (codewords of {LDPC_K_MIN}..{LDPC_K_MAX} information bits at rate >= 1/5 "
        "filling the symbols exactly); use more symbols or a higher bits_per_symbol or code_rate")


class DigitalFeaturesLink(DigitalFeaturesDeclaration, ImageLink, BitsLink):
    """Digital semantic features: the student embedding quantised, 5G LDPC-coded, sent by QAM, then classified.

    The student and classifier are RKD-SC's stage 1 (see :mod:`links.baselines.features`). The bit budget per
    image is ``floor(symbols * bits_per_symbol * code_rate)``, carried by equal codewords (:func:`ldpc_blocks`).
    The transmitter projects the embedding on its top ``c`` principal components (fitted on the training split) and
    quantises each to ``b`` bits with a uniform quantiser clipped to training percentiles; ``(c, b)`` is the choice
    with ``c = min(D, budget // b)``, ``b`` in 1..8, of the best clean validation accuracy (ties: lowest
    validation embedding MSE). The bits, zero-padded to the codewords, are scrambled by a fixed pseudo-random
    sequence (as in 5G, so the code sees random-looking bits), LDPC-encoded and QAM-mapped; the receiver demaps
    (APP), decodes, descrambles, dequantises, restores the embedding and classifies it. Metrics: ``accuracy``,
    ``ber`` (information bits of the codewords, padding included) and ``bler`` (codewords); ``sample`` computes
    the bits an image is sent as, so that ``score`` can count their errors. Channel uses per example: ``symbols``.
    """

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        p = self.params
        self.blocks, code = ldpc_blocks(p.symbols, p.bits_per_symbol, p.code_rate)
        self.modem = CodedModem(p.bits_per_symbol, code, device=self.device,
                                scrambler_seed=derive_seed(0, "digital-features", "scrambler"))
        self.features = prepare_features(p, self.data, self.data.key_config(), self.device)
        self.pca, self.quantiser, self.candidates = self._choose_quantiser()

    def _choose_quantiser(self) -> tuple[PCA, UniformQuantiser, dict[str, dict[str, float]]]:
        f = self.features
        full = PCA.fit(f.embeddings["train"], min(f.embed_dim, self.info_bits))
        val, labels = f.embeddings["val"], f.labels["val"]
        best, candidates = None, {}
        for bits in BIT_CHOICES:
            components = min(f.embed_dim, self.info_bits // bits)
            if components < 1:
                continue
            pca = full.leading(components)
            quantiser = UniformQuantiser.fit(pca.project(f.embeddings["train"]), bits)
            restored = pca.restore(quantiser.values(quantiser.indices(pca.project(val))))
            accuracy = float((f.head(restored).argmax(dim=1) == labels).float().mean())
            mse = float(((restored - val) ** 2).mean())
            candidates[f"{components}x{bits}"] = {"val_accuracy": accuracy, "val_mse": mse}
            if best is None or (accuracy, -mse) > best[0]:
                best = ((accuracy, -mse), pca, quantiser)
        return best[1], best[2], candidates

    def trained_artifacts(self):
        return self.features.artifacts  # teacher, search, student

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    @property
    def feature_bits(self) -> int:
        """Bits of the quantised embedding (at most :attr:`info_bits`; the rest is zero padding)."""
        return self.pca.components * self.quantiser.bits

    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        """``images``, ``labels`` and ``bits`` ``[B, blocks, k]``: the quantised embedding, zero-padded (float)."""
        batch = super().sample(batch_index, batch_size, generator)
        indices = self.quantiser.indices(self.pca.project(self.features.student(batch["images"])))
        bits = torch.nn.functional.pad(self.quantiser.to_bits(indices), (0, self.info_bits - self.feature_bits))
        return {**batch, "bits": bits.reshape(batch_size, self.blocks, -1)}

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        bits = self.decode_bits(received)
        features = bits.reshape(len(bits), -1)[:, : self.feature_bits]
        embedding = self.pca.restore(self.quantiser.values(self.quantiser.from_bits(features)))
        return {"prediction": self.features.head(embedding).argmax(dim=1), "bits": bits}

    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally]:
        return {**super().score(batch, estimate), **self.bit_errors(batch, estimate)}

    def describe(self) -> dict[str, Any]:
        f, m = self.features, self.params.bits_per_symbol
        stored = self.pca.parameters + self.quantiser.parameters
        chosen = self.candidates[f"{self.pca.components}x{self.quantiser.bits}"]
        return {
            **super().describe(),
            **f.describe(),
            "tx_parameters": count_parameters(f.student) + stored,
            "tx_macs": count_macs(f.student, f.image_shape) + self.pca.macs,
            "rx_parameters": count_parameters(f.head) + stored,
            "rx_macs": count_macs(f.head, (f.embed_dim,)) + self.pca.macs,
            "bits_per_symbol": m,
            "code_rate": self.modem.code_rate,
            "codewords": self.blocks,
            "ldpc_k": self.modem.block_info_bits,
            "ldpc_n": self.modem.block_coded_bits,
            "bits_per_channel_use": self.info_bits / self.channel_uses,
            "feature_bits": self.feature_bits,
            "pca_components": self.pca.components,
            "bits_per_component": self.quantiser.bits,
            "quantised_val_accuracy": chosen["val_accuracy"],
            "quantiser_candidates": "; ".join(f"{name} bits: {c['val_accuracy']:.3f}"
                                              for name, c in self.candidates.items()),
        }
