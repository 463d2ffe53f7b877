"""The ``separate`` link: separate source and channel coding of images, classified at the receiver.

Transmitter, per image: source codec (raw quantised pixels, JPEG or WebP; quality chosen per image to fill the
frame) -> frame of ``payload_bits`` -> CRC -> scrambler -> 5G LDPC (``codewords`` codewords of ``n`` bits) ->
2^m-QAM, ``symbols`` channel uses. Receiver: demapper -> LDPC decoder -> descrambler -> CRC check -> source
decoder -> the classifier trained on clean images (the teacher that RKD-SC distils, the same cached artifact).
An image whose CRC fails, or whose stream the codec rejects, is lost (``on_failure``).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import torch

from links.baselines.source_codec import make_codec
from links.bits_link import BitsLink
from links.complexity import count_macs, count_parameters
from links.declarations import SeparateDeclaration
from links.image_link import ImageLink
from links.modem import CodedModem
from links.params import (
    LDPC_K_MAX,
    LDPC_K_MIN,
    LDPC_N_MAX,
    LDPC_N_MIN,
    LDPCParams,
    ldpc_supported,
)
from links.teacher_stage import prepare_teacher
from simulator.core.channel import ChannelOutput
from simulator.core.errors import UserError
from simulator.core.link import TensorDict
from simulator.core.metrics import Tally

#: parity bits of each 5G CRC (TS 38.212 5.1)
CRC_BITS = {"CRC24A": 24, "CRC16": 16, "CRC11": 11, "CRC6": 6}
#: the scrambling sequence is fixed, like a cell's scrambling identity: it is part of the link, not of the scenario
SCRAMBLER_SEED = 0x5E9A
#: test images on which describe() measures the error-free ceiling (the first ones of the Monte-Carlo order)
CEILING_IMAGES = 1000
#: test images whose smallest code sets the minimum budget of the JPEG and WebP codecs at link construction
MIN_BUDGET_IMAGES = 100


class SeparateLink(SeparateDeclaration, ImageLink, BitsLink):
    """Separate source and channel coding: image codec, CRC, 5G LDPC, QAM; classifier on the decoded image.

    The channel-use budget ``symbols`` fixes the bits: ``symbols * bits_per_symbol`` coded bits in ``codewords``
    LDPC codewords of ``n`` bits and ``k = round(code_rate * n)`` information bits each, of which the last
    ``crc`` bits check the image, the rest (``payload_bits``) carry the source code. The codec picks its quality
    per image to fit ``payload_bits`` (see :mod:`links.baselines.source_codec`). A scrambler (a fixed
    pseudo-random sequence added to the information bits) keeps the QAM symbols at unit average energy whatever
    the image. Metrics: ``accuracy`` (lost images count per ``on_failure``), ``ber`` over the ``info_bits``
    = ``codewords * k`` LDPC information bits (CRC and padding included) and ``bler`` over codewords.
    """

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        p = self.params
        test = self.data.split("test")
        self.shape = tuple(test.images.shape[1:])
        self.codec = make_codec(p.codec)
        self._monte_carlo_order = self.data.test_batch(0, min(len(test), CEILING_IMAGES))
        needed = max(self.codec.min_bits(image) for image in self._monte_carlo_order["images"][:MIN_BUDGET_IMAGES])
        self.blocks, self.n, self.k = plan_code(p.symbols, p.bits_per_symbol, p.code_rate, p.codewords)
        crc_bits = CRC_BITS[p.crc]
        if self.blocks * self.k - crc_bits < needed:
            least = min_symbols(p.bits_per_symbol, p.code_rate, p.codewords, crc_bits + needed)
            raise UserError(
                f"symbols ({p.symbols}) is too small for codec {p.codec}: {self.blocks * self.k} information "
                f"bits less the {crc_bits}-bit CRC leave {self.blocks * self.k - crc_bits}, the images need "
                f"{needed}; use symbols >= {least} (at bits_per_symbol {p.bits_per_symbol}, code_rate {p.code_rate})")
        self.payload_bits = self.blocks * self.k - crc_bits
        try:
            ldpc = LDPCParams(k=self.k, n=self.n, num_iter=p.num_iter, cn_update=p.cn_update)
            self.modem = CodedModem(p.bits_per_symbol, ldpc, demapper=p.demapper, device=self.device,
                                    scrambler_seed=SCRAMBLER_SEED)
        except ValueError as err:  # a limit of Sionna's 5G code that plan_code does not know
            message = " ".join(str(err).split())[:200]
            raise UserError(f"symbols ({p.symbols}) and code_rate ({p.code_rate}) give a 5G LDPC code with k = "
                            f"{self.k}, n = {self.n} that Sionna rejects: {message}") from None
        from sionna.phy.fec.crc import CRCDecoder, CRCEncoder

        self._crc_encoder = CRCEncoder(p.crc, k=self.payload_bits, device=self.device)
        self._crc_decoder = CRCDecoder(self._crc_encoder, device=self.device)
        self._mean_image = self.data.split("train").images.mean(dim=0).to(self.device)

        stage = prepare_teacher(p.teacher, self.data, self.data.key_config(), p.train_seed, self.device)
        self.classifier_artifact = stage.artifact
        self.classifier = stage.teacher
        self._teacher_report = stage.report["teacher"]

    def trained_artifacts(self):
        return (self.classifier_artifact,)  # the clean-image classifier

    @property
    def channel_uses(self) -> int:
        return self.params.symbols


    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        """Images and labels, plus ``bits`` ``[B, codewords, k]`` float {0, 1}: the source-coded, CRC-protected
        LDPC information bits (the modem scrambles them), part of the payload so that ``ber`` and ``bler`` can be
        scored."""
        batch = super().sample(batch_index, batch_size, generator)
        frames, _, _ = self.codec.encode_batch(batch["images"], self.payload_bits)
        batch["bits"] = self._protect(torch.from_numpy(frames).to(self.device, torch.float32))
        return batch

    def _protect(self, frames: torch.Tensor) -> torch.Tensor:
        """Source frames ``[B, payload_bits]`` -> LDPC information bits ``[B, codewords, k]`` (CRC appended)."""
        return self._crc_encoder(frames).reshape(len(frames), self.blocks, self.k)

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        """``prediction`` ``[B]`` int64 (-1 for a lost image under ``on_failure: error``), the decoded LDPC
        information ``bits`` ``[B, codewords, k]`` and ``lost`` ``[B]`` bool."""
        bits = self.decode_bits(received)
        frames, valid = self._crc_decoder(bits.flatten(1))
        images, lost = self.reconstruct(frames, valid[:, 0])
        return {"prediction": self.classify(images, lost), "bits": bits, "lost": lost}

    def reconstruct(self, frames: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Source frames ``[B, payload_bits]`` and CRC results ``[B]`` bool -> images ``[B, C, H, W]`` (the
        ``on_failure`` image where lost) and ``lost`` ``[B]`` bool."""
        rows = torch.nonzero(valid).flatten().cpu()
        decoded, ok = self.codec.decode_batch(frames[rows].round().to(torch.uint8).cpu().numpy(), self.shape)
        lost = torch.ones(len(frames), dtype=torch.bool)
        lost[rows] = ~torch.from_numpy(ok)
        fill = self._mean_image if self.params.on_failure == "mean" else torch.zeros(self.shape, device=self.device)
        images = fill.expand(len(frames), *self.shape).clone()
        images[rows.to(self.device)] = decoded.to(self.device)
        lost = lost.to(self.device)
        images[lost] = fill
        return images, lost

    @torch.no_grad()
    def classify(self, images: torch.Tensor, lost: torch.Tensor) -> torch.Tensor:
        """Top-1 labels ``[B]`` of ``images`` ``[B, C, H, W]``; -1 where ``lost`` under ``on_failure: error``."""
        prediction = self.classifier(images)[1].argmax(dim=1)
        if self.params.on_failure == "error":
            prediction = prediction.masked_fill(lost, -1)
        return prediction

    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally]:
        return {**super().score(batch, estimate), **self.bit_errors(batch, estimate)}

    @cached_property
    def ceiling(self) -> dict[str, float]:
        """The link without channel errors, on the first :data:`CEILING_IMAGES` test images of the Monte-Carlo
        order: accuracy of the classifier on the decoded images, mean quality (raw: bits per pixel) and mean
        source-code bits of the images that fit, and the fraction that does not fit the budget at all."""
        images, labels = self._monte_carlo_order["images"], self._monte_carlo_order["labels"].to(self.device)
        frames, quality, used = self.codec.encode_batch(images, self.payload_bits)
        decoded, lost = self.reconstruct(torch.from_numpy(frames).float(), torch.ones(len(frames), dtype=torch.bool))
        correct = torch.cat([self.classify(decoded[i : i + 512], lost[i : i + 512])
                             for i in range(0, len(frames), 512)])
        fits = used > 0
        return {
            "error_free_accuracy": float((correct == labels).float().mean()),
            "mean_quality": float(quality[fits].mean()) if fits.any() else math.nan,
            "mean_source_bits": float(used[fits].mean()) if fits.any() else math.nan,
            "unfit_fraction": float(1.0 - fits.mean()),
        }

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {
            **super().describe(),
            "bits_per_symbol": p.bits_per_symbol,
            "codewords": self.blocks,
            "ldpc_k": self.k,
            "ldpc_n": self.n,
            "code_rate": self.k / self.n,
            "bits_per_channel_use": p.bits_per_symbol * self.k / self.n,
            "crc": p.crc,
            "payload_bits": self.payload_bits,
            "codec": p.codec,
            "on_failure": p.on_failure,
            **self.ceiling,
            "classifier_clean_test_accuracy": self._teacher_report["test_accuracy"],
            "tx_parameters": 0,
            "tx_macs": 0,
            "rx_parameters": count_parameters(self.classifier),
            "rx_macs": count_macs(self.classifier, self.shape),
        }


def plan_code(symbols: int, bits_per_symbol: int, code_rate: float, codewords: int | None) -> tuple[int, int, int]:
    """``(codewords, n, k)`` filling ``symbols * bits_per_symbol`` coded bits with equal 5G LDPC codewords.

    ``codewords=None`` takes the fewest codewords (a divisor of ``symbols``) whose ``k`` and ``n`` the 5G code
    supports. Raises :class:`UserError` when the budget cannot be coded.
    """
    counts = [codewords] if codewords else [c for c in range(1, symbols + 1) if symbols % c == 0]
    for count in counts:
        n = symbols * bits_per_symbol // count
        k = round(code_rate * n)
        if k <= LDPC_K_MAX and n <= LDPC_N_MAX:
            break
    else:
        raise UserError(f"codewords ({codewords}) give codewords of n = {n} bits, k = {k}: the 5G LDPC code allows "
                        f"k <= {LDPC_K_MAX} and n <= {LDPC_N_MAX}; use more codewords")
    if not ldpc_supported(n, k):
        least = min_symbols(bits_per_symbol, code_rate, codewords, 0)
        raise UserError(f"symbols ({symbols}) is too small for 5G LDPC: codewords of n = {n} bits at code_rate "
                        f"{code_rate} carry k = {k}, the code needs {LDPC_K_MIN} <= k and {LDPC_N_MIN} <= n; use "
                        f"symbols >= {least}")
    return count, n, k


def min_symbols(bits_per_symbol: int, code_rate: float, codewords: int | None, info_bits: int) -> int:
    """Fewest channel uses whose 5G LDPC plan carries at least ``info_bits`` information bits per image."""
    step = codewords or 1
    for symbols in range(step, 100 * LDPC_N_MAX, step):
        count = codewords or next(c for c in range(1, symbols + 1) if symbols % c == 0 and round(
            code_rate * symbols * bits_per_symbol / c) <= LDPC_K_MAX)
        n = symbols * bits_per_symbol // count
        k = round(code_rate * n)
        if ldpc_supported(n, k) and count * k >= info_bits:
            return symbols
    raise UserError(f"no channel-use budget carries {info_bits} bits at code_rate {code_rate}")
