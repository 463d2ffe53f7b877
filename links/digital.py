"""Digital reference link: random bits -> optional 5G LDPC -> QAM -> channel -> demapper -> LDPC decoder."""

from __future__ import annotations

import math
from typing import Any

import torch

from links.bits_link import BitsLink
from links.declarations import DigitalDeclaration
from links.modem import CodedModem
from simulator.core.channel import ChannelOutput
from simulator.core.link import TensorDict
from simulator.core.metrics import Tally


class DigitalLink(DigitalDeclaration, BitsLink):
    """Classical digital link: bits, optional 5G LDPC, 2^m-QAM (BPSK for m=1), APP or max-log demapping.

    One example is ``blocks_per_example`` blocks of ``k`` information bits (``block_bits`` when uncoded).
    Channel uses per example: ``blocks_per_example * n / m`` (``block_bits / m`` uncoded).
    Metrics: ``ber`` over information bits and ``bler`` over blocks (codewords).
    """

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        p = self.params
        self.modem = CodedModem(p.bits_per_symbol, p.ldpc, p.block_bits, p.demapper, self.device)
        self.blocks = p.blocks_per_example

    @property
    def channel_uses(self) -> int:
        return self.blocks * self.modem.block_symbols

    @property
    def code_rate(self) -> float:
        return self.modem.code_rate

    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        shape = (batch_size, self.params.blocks_per_example, self.modem.block_info_bits)
        bits = torch.randint(0, 2, shape, generator=generator, device=self.device).to(torch.float32)
        return {"bits": bits}

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        return {"bits": self.decode_bits(received)}

    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally]:
        return self.bit_errors(batch, estimate)

    def describe(self) -> dict[str, Any]:
        m = self.params.bits_per_symbol
        return {
            **super().describe(),
            "bits_per_symbol": m,
            "code_rate": self.code_rate,
            "bits_per_channel_use": m * self.code_rate,
            "rate_db": 10 * math.log10(m * self.code_rate),
        }
