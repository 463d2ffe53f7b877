"""CAT, the channel-aware transformer codec: embedding -> variable number of complex symbols -> embedding.

Encoder: the embedding ``[B, D]`` is split into ``tokens`` tokens; a transformer whose attention runs over the
tokens of *one* example (never across the batch, and no batch statistics anywhere) and which is conditioned on
the SNR maps them to ``max_symbols`` complex symbols, ordered so that any prefix of ``L`` symbols is a usable
code. ``encode(embedding, snr_db, L)`` returns the first ``L``, normalised to unit average energy per example.

Decoder: receives the ``L`` equalised symbols and their effective noise variances, marks the missing tail,
conditions on the SNR and the per-symbol reliability, and restores the embedding.

Training with a random ``L`` per batch from ``budgets`` makes one model serve every budget.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import nn

from simulator.config_model import Params


class CATParams(Params):
    """Channel-aware transformer codec."""

    tokens: int = Field(default=8, ge=1, le=256, description="tokens the embedding is split into")
    width: int = Field(default=64, ge=8, le=1024, description="transformer width")
    depth: int = Field(default=2, ge=1, le=12)
    heads: int = Field(default=4, ge=1, le=16)
    max_symbols: int = Field(default=64, ge=1, le=4096, description="longest code, complex symbols per image")
    budgets: tuple[int, ...] = Field(default=(4, 8, 16, 32, 64), min_length=1,
                                     description="symbol budgets L sampled in training")

    @model_validator(mode="after")
    def _consistent(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        if self.max_symbols % self.tokens:
            raise ValueError(f"max_symbols {self.max_symbols} is not a multiple of tokens {self.tokens}")
        bad = [b for b in self.budgets if not 1 <= b <= self.max_symbols]
        if bad:
            raise ValueError(f"budgets {bad} outside 1..max_symbols ({self.max_symbols})")
        return self


def _transformer(params: CATParams) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(params.width, params.heads, 2 * params.width, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, params.depth, enable_nested_tensor=False)


class SNREmbedding(nn.Module):
    """SNR in dB ``[B]`` -> conditioning vector ``[B, 1, width]`` added to every token."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, snr_db: torch.Tensor) -> torch.Tensor:
        return self.net((snr_db.float() / 20.0)[:, None])[:, None, :]


class CATEncoder(nn.Module):
    """``(embedding [B, D], snr_db [B], L) -> symbols [B, L]`` complex64, unit energy per example."""

    def __init__(self, params: CATParams, embed_dim: int):
        super().__init__()
        if embed_dim % params.tokens:
            raise ValueError(f"embedding size {embed_dim} is not a multiple of tokens {params.tokens}")
        self.params = params
        self.inp = nn.Linear(embed_dim // params.tokens, params.width)
        self.position = nn.Parameter(torch.randn(1, params.tokens, params.width) * 0.02)
        self.snr = SNREmbedding(params.width)
        self.transformer = _transformer(params)
        self.out = nn.Linear(params.tokens * params.width, 2 * params.max_symbols)

    def forward(self, embedding: torch.Tensor, snr_db: torch.Tensor, symbols: int) -> torch.Tensor:
        batch = embedding.shape[0]
        tokens = self.inp(embedding.reshape(batch, self.params.tokens, -1)) + self.position + self.snr(snr_db)
        code = self.out(self.transformer(tokens).reshape(batch, -1)).reshape(batch, self.params.max_symbols, 2)
        z = torch.complex(code[:, :symbols, 0], code[:, :symbols, 1])
        return z / z.abs().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)


class CATDecoder(nn.Module):
    """``(symbols [B, L], no_eff [B, L], snr_db [B]) -> embedding [B, D]`` for any ``L <= max_symbols``.

    Per symbol it sees the MMSE-shrunk estimate ``x_hat / (1 + no_eff)`` (bounded in deep fades), the
    reliability ``-log10(no_eff)`` and a flag that the symbol was sent; absent symbols are all zeros.
    """

    FEATURES = 4

    def __init__(self, params: CATParams, embed_dim: int):
        super().__init__()
        self.params = params
        per_token = params.max_symbols // params.tokens
        self.inp = nn.Linear(per_token * self.FEATURES, params.width)
        self.position = nn.Parameter(torch.randn(1, params.tokens, params.width) * 0.02)
        self.snr = SNREmbedding(params.width)
        self.transformer = _transformer(params)
        self.out = nn.Linear(params.tokens * params.width, embed_dim)

    def forward(self, symbols: torch.Tensor, no_eff: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        batch, length = symbols.shape
        no_eff = no_eff.float().clamp(1e-6, 1e6)
        shrunk = symbols / (1.0 + no_eff)
        features = torch.stack([shrunk.real, shrunk.imag, -torch.log10(no_eff) / 2.0,
                                torch.ones_like(no_eff)], dim=-1)
        padded = features.new_zeros(batch, self.params.max_symbols, self.FEATURES)
        padded[:, :length] = features
        tokens = self.inp(padded.reshape(batch, self.params.tokens, -1)) + self.position + self.snr(snr_db)
        return self.out(self.transformer(tokens).reshape(batch, -1))
