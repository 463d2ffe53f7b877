"""The base of links that carry bits over the shared modem (:class:`links.modem.CodedModem`): ``digital``,
``separate`` and ``digital-features``.

A subclass sets, in its constructor, ``self.modem`` (the LDPC + QAM chain) and ``self.blocks`` (codewords, or
uncoded blocks, per example), and puts the information bits of each example in its payload as ``bits``
``[B, blocks, k]`` float {0, 1}. This base then supplies the transmitter (the modem's symbols), the receiver's
hard decisions (:meth:`decode_bits`), the ``ber`` / ``bler`` counts (:meth:`bit_errors`), the information bits per
example (for Eb/N0) and the receiver call size the modem runs fastest at.
"""

from __future__ import annotations

import torch

from links.modem import CodedModem
from simulator.core.channel import ChannelOutput
from simulator.core.link import Link, TensorDict
from simulator.core.metrics import Tally


class BitsLink(Link):
    """A link whose payload includes ``bits`` ``[B, blocks, k]`` sent through ``self.modem``."""

    modem: CodedModem
    blocks: int

    @property
    def info_bits(self) -> int:
        """Information bits per example: ``blocks`` x the modem's information bits per block."""
        return self.blocks * self.modem.block_info_bits

    @property
    def receive_batch_hint(self) -> int | None:
        return self.modem.receive_batch_hint(self.blocks, self.channel_uses)

    def encode(self, batch: TensorDict) -> TensorDict:
        """``symbols`` ``[B, blocks * n / m]`` complex64: the payload's ``bits`` coded and mapped."""
        return {"symbols": self.modem.modulate(batch["bits"])}

    def decode_bits(self, received: ChannelOutput) -> torch.Tensor:
        """Hard decisions on the information bits, ``[B, blocks, k]`` float {0, 1}."""
        return self.modem.demodulate(received.symbols, received.no_eff)

    def bit_errors(self, batch: TensorDict, estimate: TensorDict) -> dict[str, Tally]:
        """``ber`` (bit errors of the ``info_bits``) and ``bler`` (blocks with an error, of ``blocks``) per
        example, from the payload's and the estimate's ``bits``."""
        wrong = batch["bits"] != estimate["bits"]
        return {"ber": Tally(wrong.sum(dim=(1, 2)), self.info_bits),
                "bler": Tally(wrong.any(dim=-1).sum(dim=1), self.blocks)}
