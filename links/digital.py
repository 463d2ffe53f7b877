"""Digital reference link: random bits -> optional 5G LDPC -> QAM -> channel -> demapper -> LDPC decoder."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Constellation, Demapper, Mapper

from simulator.channels.base import ChannelOutput
from simulator.config_model import Params
from simulator.link import Link, TensorDict
from simulator.metrics import Tally

#: receiver call sizes that run fastest on a CPU (see DigitalLink.receive_batch_hint)
LDPC_CODEWORDS_PER_CALL = 96
DEMAPPER_SYMBOLS_PER_THREAD = 2**14


class LDPCParams(Params):
    """5G NR LDPC code (Sionna ``LDPC5GEncoder``/``LDPC5GDecoder``, with rate matching)."""

    k: int = Field(default=512, ge=12, le=8448, description="information bits per codeword")
    n: int = Field(default=1024, ge=16, description="codeword bits after rate matching")
    num_iter: int = Field(default=20, ge=1, le=200, description="belief-propagation iterations")
    cn_update: Literal["boxplus-phi", "boxplus", "minsum", "offset-minsum"] = "boxplus-phi"

    @model_validator(mode="after")
    def _rate(self):
        if not self.k < self.n:
            raise ValueError(f"k ({self.k}) must be smaller than n ({self.n})")
        return self


class DigitalLink(Link):
    """Classical digital link: bits, optional 5G LDPC, 2^m-QAM (BPSK for m=1), APP or max-log demapping.

    One example is ``blocks_per_example`` blocks of ``k`` information bits (``block_bits`` when uncoded).
    Channel uses per example: ``blocks_per_example * n / m`` (``block_bits / m`` uncoded).
    Metrics: ``ber`` over information bits and ``bler`` over blocks (codewords).
    """

    description = "Bits -> optional 5G LDPC -> QAM -> demapper (app/maxlog) -> LDPC decoder; BER and BLER"
    metrics = ("ber", "bler")

    class Params(Params):
        bits_per_symbol: Literal[1, 2, 4, 6, 8, 10] = Field(default=2, description="m; 2^m-QAM, 1 = BPSK")
        ldpc: LDPCParams | None = Field(default=None, description="5G LDPC code; null for uncoded")
        block_bits: int = Field(default=1024, ge=1, le=1_000_000, description="bits per block when uncoded")
        blocks_per_example: int = Field(default=1, ge=1, le=10_000)
        demapper: Literal["app", "maxlog"] = "app"

        @model_validator(mode="after")
        def _fits_symbols(self):
            m = self.bits_per_symbol
            coded = self.ldpc.n if self.ldpc else self.block_bits
            name = "ldpc.n" if self.ldpc else "block_bits"
            if coded % m:
                raise ValueError(f"{name} ({coded}) must be a multiple of bits_per_symbol ({m})")
            return self

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        p = self.params
        m = p.bits_per_symbol
        kind = "pam" if m == 1 else "qam"
        self._constellation = Constellation(kind, m, normalize=True, device=self.device)
        self._mapper = Mapper(constellation=self._constellation, device=self.device)
        self._demapper = Demapper(
            p.demapper, constellation=self._constellation, hard_out=p.ldpc is None, device=self.device
        )
        if p.ldpc is not None:
            self._encoder = LDPC5GEncoder(p.ldpc.k, p.ldpc.n, num_bits_per_symbol=m, device=self.device)
            self._decoder = LDPC5GDecoder(
                self._encoder, cn_update=p.ldpc.cn_update, num_iter=p.ldpc.num_iter, hard_out=True,
                device=self.device,
            )

    @property
    def block_info_bits(self) -> int:
        return self.params.ldpc.k if self.params.ldpc else self.params.block_bits

    @property
    def block_coded_bits(self) -> int:
        return self.params.ldpc.n if self.params.ldpc else self.params.block_bits

    @property
    def channel_uses(self) -> int:
        return self.params.blocks_per_example * self.block_coded_bits // self.params.bits_per_symbol

    @property
    def info_bits(self) -> int:
        return self.params.blocks_per_example * self.block_info_bits

    @property
    def receive_batch_hint(self) -> int | None:
        # On a CPU the demapper and the LDPC decoder get slower per symbol once a call's working set leaves the
        # caches (2 cores: demapping 14.7 Msym/s at 2^14 symbols per call, 10.1 at 2^20; LDPC n=1024 with 20
        # iterations 1.7 ms per codeword at 50-100 codewords per call, 2.9 ms at 400, 5.9 ms at 1400, and
        # 16 cores were slower at 512 than at 100 too), while demapping on more threads needs larger calls to
        # keep them busy (16 cores ran 2x slower at the 2-core size). On a GPU larger calls are faster: no limit.
        if self.device != "cpu":
            return None
        if self.params.ldpc is not None:
            return max(1, LDPC_CODEWORDS_PER_CALL // self.params.blocks_per_example)
        return max(1, DEMAPPER_SYMBOLS_PER_THREAD * torch.get_num_threads() // self.channel_uses)

    @property
    def code_rate(self) -> float:
        return self.block_info_bits / self.block_coded_bits

    def sample(self, batch_index: int, batch_size: int, generator: torch.Generator) -> TensorDict:
        shape = (batch_size, self.params.blocks_per_example, self.block_info_bits)
        bits = torch.randint(0, 2, shape, generator=generator, device=self.device).to(torch.float32)
        return {"bits": bits}

    def encode(self, batch: TensorDict) -> TensorDict:
        bits = batch["bits"]
        codewords = self._encoder(bits) if self.params.ldpc is not None else bits
        symbols = self._mapper(codewords.reshape(bits.shape[0], -1))
        return {"symbols": symbols}

    def modulate(self, encoded: TensorDict, snr_db: torch.Tensor | None) -> torch.Tensor:
        return encoded["symbols"]

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        out = self._demapper(received.symbols, received.no_eff)
        blocks = out.reshape(out.shape[0], self.params.blocks_per_example, self.block_coded_bits)
        if self.params.ldpc is None:
            return {"bits": blocks}
        return {"bits": self._decoder(blocks)}

    def score(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally]:
        wrong = batch["bits"] != estimate["bits"]
        block_errors = wrong.any(dim=-1)
        return {
            "ber": Tally(wrong.sum(dim=(1, 2)), self.info_bits),
            "bler": Tally(block_errors.sum(dim=1), self.params.blocks_per_example),
        }

    def describe(self) -> dict[str, Any]:
        m = self.params.bits_per_symbol
        return {
            **super().describe(),
            "bits_per_symbol": m,
            "code_rate": self.code_rate,
            "bits_per_channel_use": m * self.code_rate,
            "rate_db": 10 * math.log10(m * self.code_rate),
        }
