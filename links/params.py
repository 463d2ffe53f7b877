"""Settings shared by several link types: the teacher, the augmentation of training images, the 5G LDPC code and
the QAM order.

Only pydantic models and constants live here, no torch: validating a scenario (``semsim validate``) reads them
without importing the networks, the training code or the modem (:mod:`links.teacher`, :mod:`links.augment`,
:mod:`links.modem`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from simulator.core.params import Params

BitsPerSymbol = Literal[1, 2, 4, 6, 8, 10]

#: 5G NR LDPC limits (3GPP TS 38.212, as Sionna's LDPC5GEncoder checks them): information bits per codeword,
#: codeword bits after rate matching, and the lowest rate
LDPC_K_MIN, LDPC_K_MAX, LDPC_N_MIN, LDPC_N_MAX, LDPC_RATE_MIN = 12, 8448, 16, 316 * 384, 0.2


def ldpc_supported(n: int, k: int, max_rate: float = 0.95) -> bool:
    """Whether the 5G LDPC code (with rate matching) has a codeword of ``n`` bits carrying ``k``."""
    return LDPC_K_MIN <= k <= LDPC_K_MAX and LDPC_N_MIN <= n <= LDPC_N_MAX and LDPC_RATE_MIN <= k / n <= max_rate


#: check-node rules: Sionna's four, and min-sum scaled by ``links.ldpc_cpu.NMS_SCALE`` (0.75)
CNUpdate = Literal["boxplus-phi", "boxplus", "minsum", "offset-minsum", "normalized-minsum"]
#: LDPC decoders: the numba CPU decoder (links/ldpc_cpu.py) or Sionna's LDPC5GDecoder
LDPCDecoder = Literal["numba", "sionna"]


class LDPCParams(Params):
    """5G NR LDPC code (Sionna ``LDPC5GEncoder``, with rate matching) and its belief-propagation decoder."""

    k: int = Field(default=512, ge=12, le=8448, description="information bits per codeword")
    n: int = Field(default=1024, ge=16, description="codeword bits after rate matching")
    num_iter: int = Field(default=20, ge=1, le=200, description="belief-propagation iterations (at most)")
    cn_update: CNUpdate = Field(default="boxplus-phi", description="check-node update rule")
    decoder: LDPCDecoder = Field(
        default="numba", description="numba: the CPU decoder of links.ldpc_cpu (same graph and numerics as "
        "Sionna's, early stop); sionna: Sionna's LDPC5GDecoder. A CUDA device always uses sionna")

    @model_validator(mode="after")
    def _rate(self):
        if not self.k < self.n:
            raise ValueError(f"k ({self.k}) must be smaller than n ({self.n})")
        return self


class AugmentParams(Params):
    """Per-image random affine warp; every range is symmetric around the identity."""

    rotate_deg: float = Field(default=12.0, ge=0.0, le=180.0, description="rotation up to +- this many degrees")
    scale: float = Field(default=0.1, ge=0.0, lt=1.0, description="zoom factor in 1 +- scale")
    shift: float = Field(default=1.0, ge=0.0, description="translation up to +- this many pixels per axis")


class TeacherParams(Params):
    """The teacher.

    ``type: cnn`` (default): a wide residual CNN trained from scratch with random affine augmentation
    (``augment``), AdamW, linear warm-up and a cosine schedule. On the 8x8 digits the defaults give 0.54 M
    parameters, 7.5 M multiply-accumulates per image and 99.7 % test accuracy after 40 epochs (about 15 s on
    2 CPU cores): the strongest classifier semsim has for them, 33x the parameters of the default student.

    ``type: vit``: the embedded vision transformer (0.53 M parameters on the digits with the defaults, 16 patches
    of 2x2; about 92 % test accuracy after 40 epochs without augmentation: weaker than its own students there).

    ``type: clip``: the CLIP image encoder (``clip_model``: a Hugging Face hub name or a local directory; with
    ``offline: true`` only local files are used), frozen, with a linear head fitted on the task by the same
    optimiser settings (``epochs``, ``batch_size``, ``lr``, ``weight_decay``) on embeddings computed once (so no
    augmentation); images are resized to the model's input size and normalised with CLIP's own statistics.

    ``batch_size`` and ``lr`` default to 64 and 2e-3 for the CNN and CLIP, 32 and 1e-3 for the ViT.
    """

    type: Literal["cnn", "vit", "clip"] = "cnn"
    clip_model: str = Field(default="openai/clip-vit-base-patch32", min_length=1)
    offline: bool = Field(default=False, description="clip: load from local files only")

    dim: int = Field(default=128, ge=8, le=1024, description="embedding size D (cnn, vit)")
    width: int = Field(default=48, ge=4, le=1024, description="cnn: channels of the first stage (the second: 2x)")
    patch_size: int = Field(default=2, ge=1, le=16, description="vit: square patch side in pixels")
    depth: int = Field(default=4, ge=1, le=24, description="vit: transformer layers")
    heads: int = Field(default=4, ge=1, le=16, description="vit: attention heads")
    mlp_ratio: float = Field(default=2.0, gt=0.0, le=8.0, description="vit: MLP width / dim")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    augment: AugmentParams | None = Field(default=AugmentParams(),
                                          description="cnn, vit: random affine warps of training images; null: none")
    epochs: int = Field(default=40, ge=1, le=10_000)
    warmup_epochs: int = Field(default=3, ge=0)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=2e-3, gt=0.0)
    weight_decay: float = Field(default=0.05, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_the_type(cls, data):
        if isinstance(data, dict) and data.get("type") == "vit":  # the ViT's tuned settings, kept from before
            data = {"batch_size": 32, "lr": 1e-3, "augment": None, **data}
        return data

    @model_validator(mode="after")
    def _fields_of_the_type(self):
        only = {"cnn": {"width"}, "vit": {"patch_size", "depth", "heads", "mlp_ratio"},
                "clip": {"clip_model", "offline"}}
        shared = {"cnn": {"dim", "dropout", "augment", "warmup_epochs"}, "vit": {"dim", "dropout", "augment",
                                                                               "warmup_epochs"}}
        allowed = only[self.type] | shared.get(self.type, set())
        foreign = set().union(*only.values(), *shared.values()) - allowed
        unused = sorted(foreign & self.model_fields_set)
        if unused:
            raise ValueError(f"{', '.join(unused)} do not apply to teacher type {self.type}")
        return self

    @property
    def augmentation(self) -> AugmentParams | None:
        """The augmentation applied in training (``None`` for CLIP, whose head is fitted on fixed embeddings)."""
        return None if self.type == "clip" else self.augment


class DigitalParams(Params):
    """Every setting of the ``digital`` link."""

    bits_per_symbol: BitsPerSymbol = Field(default=2, description="m; 2^m-QAM, 1 = BPSK")
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


#: what the keras link's encoder and decoder fields take
KERAS_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
KERAS_MODEL_ALLOWED = "a path to a saved .keras file or a module:factory returning a keras.Model"


class KerasParams(Params):
    """Every setting of the ``keras`` link."""

    encoder: str = Field(description=f"encoder: {KERAS_MODEL_ALLOWED}; images [B, H, W, C] -> 2 * symbols reals")
    decoder: str = Field(description=f"decoder: {KERAS_MODEL_ALLOWED}; [B, 2 * symbols] reals (and snr_db) -> scores")
    symbols: int = Field(default=16, ge=1, le=65536, description="complex channel uses per image")

    @field_validator("encoder", "decoder")
    @classmethod
    def _reference(cls, value: str) -> str:
        if not (value.endswith(".keras") or KERAS_FACTORY.match(value)):
            raise ValueError(f"{value!r}: expected {KERAS_MODEL_ALLOWED} (the file name must end in .keras)")
        return value
