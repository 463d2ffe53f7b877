"""Bits over a channel: optional 5G NR LDPC, 2^m-QAM (BPSK for m = 1), APP or max-log demapping.

One object serves every link that sends bits (the ``digital`` reference link, separate source/channel coding,
digital semantic features), so they share one validated transmit/receive chain::

    modem = CodedModem(bits_per_symbol=4, ldpc=LDPCParams(k=128, n=256), device="cpu")
    symbols = modem.modulate(bits)            # bits [B, blocks, k] float {0,1} -> [B, blocks * n / m] complex64
    bits_hat = modem.demodulate(y, no_eff)    # -> [B, blocks, k] float {0,1} (hard decisions)

Uncoded, a block is ``block_bits`` bits sent as they are. With ``scrambler_seed`` the information bits of an example
are added (mod 2) to a fixed pseudo-random sequence before coding and the sequence is removed after decoding, so
that structured payloads (image codes, quantised features, padding) still give QAM symbols of unit average energy;
error positions, and so BER and BLER, are unchanged by it.

LDPC decoding on a CPU uses, by default, :class:`links.ldpc_cpu.NumbaLDPC5GDecoder` (``decoder: numba``): the same
flooding belief propagation on the same graph as Sionna's ``LDPC5GDecoder``, with early stop, 7.5-25 times
faster per core (``benchmarks/ldpc_decoders.py``); ``decoder: sionna`` selects Sionna's. A CUDA device always
uses Sionna's decoder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch

from links.params import LDPCParams

if TYPE_CHECKING:
    from sionna.phy.fec.ldpc import LDPC5GEncoder

#: receiver call sizes that run fastest on a CPU (see CodedModem.receive_batch_hint)
LDPC_CODEWORDS_PER_CALL = 96
DEMAPPER_SYMBOLS_PER_THREAD = 2**14

def ldpc_decoder_for(decoder: str, device: str) -> str:
    """The decoder that runs: ``decoder`` on a CPU, Sionna's on any other device (the numba one is CPU only)."""
    return decoder if torch.device(device).type == "cpu" else "sionna"


def build_ldpc_decoder(encoder: LDPC5GEncoder, ldpc: LDPCParams, decoder: str, device: str = "cpu"):
    """The hard-decision decoder of ``encoder``'s code: channel logits ``[..., n]`` -> information bits
    ``[..., k]`` float32 {0, 1}, on ``device``. ``decoder``: ``numba`` (CPU only) or ``sionna``."""
    if decoder == "numba":
        from links.ldpc_cpu import NumbaLDPC5GDecoder  # imports numba: only when used

        return NumbaLDPC5GDecoder(encoder, num_iter=ldpc.num_iter, cn_update=ldpc.cn_update)
    callbacks = None
    cn_update = ldpc.cn_update
    if cn_update == "normalized-minsum":
        from links.ldpc_cpu import NMS_SCALE

        cn_update, callbacks = "minsum", [lambda msg, it: msg * NMS_SCALE]
    from sionna.phy.fec.ldpc import LDPC5GDecoder

    return LDPC5GDecoder(encoder, cn_update=cn_update, num_iter=ldpc.num_iter, hard_out=True, c2v_callbacks=callbacks,
                         device=device)


class CodedModem:
    """LDPC (optional) + QAM transmitter and demapper + decoder receiver, on one device.

    Args:
        bits_per_symbol: m; 2^m-QAM, 1 = BPSK.
        ldpc: the code, or ``None`` for uncoded blocks of ``block_bits``.
        block_bits: bits per block when uncoded.
        demapper: ``app`` (exact bitwise MAP LLRs) or ``maxlog``.
        device: torch device string; Sionna blocks are built on it.
        scrambler_seed: seed of the fixed scrambling sequence, or ``None`` for no scrambling.
    """

    def __init__(self, bits_per_symbol: int, ldpc: LDPCParams | None = None, block_bits: int = 1024,
                 demapper: Literal["app", "maxlog"] = "app", device: str = "cpu", scrambler_seed: int | None = None):
        self.bits_per_symbol = m = bits_per_symbol
        self.ldpc = ldpc
        self.block_bits = block_bits
        self.device = device
        self.scrambler_seed = scrambler_seed
        self._sequences: dict[int, torch.Tensor] = {}
        coded = ldpc.n if ldpc else block_bits
        if coded % m:
            name = "ldpc.n" if ldpc else "block_bits"
            raise ValueError(f"{name} ({coded}) must be a multiple of bits_per_symbol ({m})")
        # Sionna is imported when a modem is built, not when its module loads (light `semsim list`)
        from sionna.phy.fec.ldpc import LDPC5GEncoder
        from sionna.phy.mapping import Constellation, Demapper, Mapper

        constellation = Constellation("pam" if m == 1 else "qam", m, normalize=True, device=device)
        self._mapper = Mapper(constellation=constellation, device=device)
        self._demapper = Demapper(demapper, constellation=constellation, hard_out=ldpc is None, device=device)
        #: the LDPC decoder in use, ``numba`` or ``sionna`` (``None`` uncoded)
        self.decoder = None
        if ldpc is not None:
            self._encoder = LDPC5GEncoder(ldpc.k, ldpc.n, num_bits_per_symbol=m, device=device)
            self.decoder = ldpc_decoder_for(ldpc.decoder, device)
            self._decoder = build_ldpc_decoder(self._encoder, ldpc, self.decoder, device)

    @property
    def block_info_bits(self) -> int:
        """Information bits per block (``k``, or ``block_bits`` uncoded)."""
        return self.ldpc.k if self.ldpc else self.block_bits

    @property
    def block_coded_bits(self) -> int:
        """Channel bits per block (``n``, or ``block_bits`` uncoded)."""
        return self.ldpc.n if self.ldpc else self.block_bits

    @property
    def block_symbols(self) -> int:
        """Complex channel uses per block."""
        return self.block_coded_bits // self.bits_per_symbol

    @property
    def code_rate(self) -> float:
        return self.block_info_bits / self.block_coded_bits

    def receive_batch_hint(self, blocks_per_example: int, channel_uses: int) -> int | None:
        """Examples per receiver call that run fastest.

        On a CPU the demapper and the LDPC decoder get slower per symbol once a call's working set leaves the
        caches (2 cores: demapping 14.7 Msym/s at 2^14 symbols per call, 10.1 at 2^20; LDPC n=1024 with 20
        iterations 1.7 ms per codeword at 50-100 codewords per call, 2.9 ms at 400, 5.9 ms at 1400, and 16 cores
        were slower at 512 than at 100 too; the numba decoder, k=512 n=1024 at BLER 7 %, ran 0.97x as fast at 256
        codewords per call as at 96, 0.86x at 1024, 0.68x at 8), while demapping on more threads needs larger calls
        to keep them busy (16 cores ran 2x slower at the 2-core size). On a GPU larger calls are faster: no limit.
        """
        if self.device != "cpu":
            return None
        if self.ldpc is not None:
            return max(1, LDPC_CODEWORDS_PER_CALL * 1024 // self.ldpc.n // blocks_per_example)
        return max(1, DEMAPPER_SYMBOLS_PER_THREAD * torch.get_num_threads() // channel_uses)

    def _scramble(self, bits: torch.Tensor) -> torch.Tensor:
        """``bits [B, blocks, k]`` plus (mod 2) the scrambling sequence of ``blocks * k`` bits; its own inverse."""
        if self.scrambler_seed is None:
            return bits
        length = bits.shape[1] * bits.shape[2]
        if length not in self._sequences:
            generator = torch.Generator().manual_seed(self.scrambler_seed)
            self._sequences[length] = torch.randint(0, 2, (length,), generator=generator).float().to(self.device)
        return torch.remainder(bits + self._sequences[length].reshape(bits.shape[1:]), 2.0)

    def modulate(self, bits: torch.Tensor) -> torch.Tensor:
        """``bits [B, blocks, block_info_bits]`` float in {0, 1} -> symbols ``[B, blocks * block_symbols]``."""
        bits = self._scramble(bits)
        codewords = self._encoder(bits) if self.ldpc is not None else bits
        return self._mapper(codewords.reshape(bits.shape[0], -1))

    def demodulate(self, symbols: torch.Tensor, no_eff: torch.Tensor) -> torch.Tensor:
        """Equalised ``symbols`` and ``no_eff`` ``[B, blocks * block_symbols]`` -> hard bits
        ``[B, blocks, block_info_bits]`` float in {0, 1}."""
        out = self._demapper(symbols, no_eff)
        blocks = out.reshape(out.shape[0], -1, self.block_coded_bits)
        return self._scramble(blocks if self.ldpc is None else self._decoder(blocks))
