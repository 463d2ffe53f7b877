"""CAT, the channel-aware transformer codec: embedding -> variable number of complex symbols -> embedding.

Encoder: the embedding ``[B, D]`` is split into ``tokens`` tokens; a small transformer whose attention runs over
the tokens of *one* example (never across the batch, and no batch statistics anywhere) and which is conditioned on
the SNR mixes them, and each token emits its share of the ``max_symbols`` complex symbols through one linear map
shared by the tokens (symbol ``s`` comes from token ``s mod tokens``), so any prefix of ``L`` symbols draws on
every token and is a usable code. ``encoder(embedding, snr_db, L)`` returns the first ``L``, normalised to unit
average energy per example. The per-token output keeps the transmitter light: with the defaults the encoder
has 3.2 k parameters, where one linear map from all tokens to all symbols would need 16 k.

Decoder: receives the ``L`` equalised symbols and their effective noise variances, marks the missing tail, gives
token ``t`` the symbols encoder token ``t`` emitted, conditions on the SNR and the per-symbol reliability, and
restores the embedding. It may be wider and deeper than the encoder: the receiver is not the light end.

Training with a random ``L`` per batch from ``budgets`` makes one model serve every budget.
"""

from __future__ import annotations

import torch
from torch import nn

from links.rkdsc.params import CATParams
from simulator.core.snr import normalize_energy


class MixerLayer(nn.Module):
    """An MLP-Mixer layer, the attention-free ablation of a transformer layer: a fixed MLP across the tokens of
    one example (``tokens -> 2 tokens -> tokens``), then a per-token MLP (``width -> 2 width -> width``), each
    pre-normed and residual. ``[B, T, W] -> [B, T, W]``."""

    def __init__(self, tokens: int, width: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, 2 * tokens), nn.GELU(), nn.Linear(2 * tokens, tokens))
        self.channel_mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


def _backbone(params: CATParams, width: int, depth: int) -> nn.Module:
    """Token mixing ``[B, T, width] -> [B, T, width]`` within each example: transformer or MLP-Mixer layers."""
    if params.backbone == "mlp":
        return nn.Sequential(*(MixerLayer(params.tokens, width) for _ in range(depth)))
    layer = nn.TransformerEncoderLayer(width, params.heads, 2 * width, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class SNREmbedding(nn.Module):
    """SNR in dB ``[B]`` -> conditioning vector ``[B, 1, width]`` added to every token."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, snr_db: torch.Tensor) -> torch.Tensor:
        return self.net((snr_db.float() / 20.0)[:, None])[:, None, :]


class CATEncoder(nn.Module):
    """``(embedding [B, D], snr_db [B] or None, L) -> symbols [B, L]`` complex64, unit energy per example.

    With ``encoder_snr: false`` the encoder has no SNR input (``snr_db`` is ignored and may be ``None``).
    """

    def __init__(self, params: CATParams, embed_dim: int):
        super().__init__()
        if embed_dim % params.tokens:
            raise ValueError(f"embedding size {embed_dim} is not a multiple of tokens {params.tokens}")
        self.params = params
        width = params.encoder_width
        self.inp = nn.Linear(embed_dim // params.tokens, width)
        self.position = nn.Parameter(torch.randn(1, params.tokens, width) * 0.02)
        self.snr = SNREmbedding(width) if params.encoder_snr else None
        self.transformer = _backbone(params, width, params.encoder_depth)
        self.out = nn.Linear(width, 2 * params.max_symbols // params.tokens)  # each token's share of the code

    def forward(self, embedding: torch.Tensor, snr_db: torch.Tensor | None, symbols: int) -> torch.Tensor:
        batch = embedding.shape[0]
        tokens = self.inp(embedding.reshape(batch, self.params.tokens, -1)) + self.position
        if self.snr is not None:
            tokens = tokens + self.snr(snr_db)
        # token t emits symbols t, t + T, t + 2T, ...: every prefix of the code draws on every token
        code = self.out(self.transformer(tokens)).reshape(batch, self.params.tokens, -1, 2).transpose(1, 2)
        code = code.reshape(batch, self.params.max_symbols, 2)
        return normalize_energy(torch.complex(code[:, :symbols, 0], code[:, :symbols, 1]))



class CATDecoder(nn.Module):
    """``(symbols [B, L], no_eff [B, L], snr_db [B]) -> embedding [B, D]`` for any ``L <= max_symbols``.

    Per symbol it sees the MMSE-shrunk estimate ``x_hat / (1 + no_eff)`` (bounded in deep fades), the
    reliability ``-log10(no_eff)`` and a flag that the symbol was sent; absent symbols are all zeros. With
    ``decoder_no_eff: false`` it gets the per-example noise variance ``10**(-snr_db/10)`` in place of every
    symbol's ``no_eff``: it knows the SNR but not which symbols a fade or an equaliser made unreliable.
    """

    FEATURES = 4

    def __init__(self, params: CATParams, embed_dim: int):
        super().__init__()
        self.params = params
        per_token = params.max_symbols // params.tokens
        self.inp = nn.Linear(per_token * self.FEATURES, params.width)
        self.position = nn.Parameter(torch.randn(1, params.tokens, params.width) * 0.02)
        self.snr = SNREmbedding(params.width)
        self.transformer = _backbone(params, params.width, params.depth)
        self.out = nn.Linear(params.tokens * params.width, embed_dim)

    def forward(self, symbols: torch.Tensor, no_eff: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        batch, length = symbols.shape
        if not self.params.decoder_no_eff:
            no_eff = torch.pow(10.0, -snr_db.float() / 10.0)[:, None].expand(batch, length)
        no_eff = no_eff.float().clamp(1e-6, 1e6)
        shrunk = symbols / (1.0 + no_eff)
        features = torch.stack([shrunk.real, shrunk.imag, -torch.log10(no_eff) / 2.0,
                                torch.ones_like(no_eff)], dim=-1)
        padded = features.new_zeros(batch, self.params.max_symbols, self.FEATURES)
        padded[:, :length] = features
        # decoder token t reads the symbols encoder token t emitted (t, t + T, ...)
        per_token = padded.reshape(batch, -1, self.params.tokens, self.FEATURES).transpose(1, 2)
        tokens = self.inp(per_token.reshape(batch, self.params.tokens, -1)) + self.position + self.snr(snr_db)
        return self.out(self.transformer(tokens).reshape(batch, -1))
