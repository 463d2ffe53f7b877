"""The RKD-SC link's settings: the KDL-DARTS search, the CAT codec, the two training stages, and the pipeline
that holds them (``PipelineParams``; the ``rkdsc`` link adds ``symbols``).

Only pydantic models live here, no torch: validating a scenario (``semsim validate``) reads them without importing
the networks (:mod:`links.rkdsc.darts`, :mod:`links.rkdsc.cat`) or the training code (:mod:`links.rkdsc.pipeline`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from links.params import AugmentParams, TeacherParams
from simulator.core.params import Params
from simulator.core.spec import ChannelSpec


class SearchParams(Params):
    """KDL-DARTS settings: the supernet, its first-order bi-level search, and the random-genotype control.

    The seed is not one of them: :func:`search` takes it (the pipeline passes the link's ``train_seed``).
    """

    cells: int = Field(default=3, ge=1, le=12, description="cells stacked; reduction cells (stride 2) where the "
                       "spatial size allows")
    nodes: int = Field(default=3, ge=1, le=8, description="intermediate nodes per cell")
    channels: int = Field(default=12, ge=2, le=256, description="base width C of the supernet and of the derived "
                          "student")
    epochs: int = Field(default=10, ge=1, le=1000, description="passes over the training split")
    batch_size: int = Field(default=64, ge=1)
    weight_lr: float = Field(default=3e-3, gt=0.0, description="Adam on the network weights")
    arch_lr: float = Field(default=3e-3, gt=0.0, description="Adam on the architecture logits")
    lambda_complexity: float = Field(default=1.0, ge=0.0, description="weight of the expected complexity, "
                                     "normalised to [0, 1]; 1 is a strong penalty")
    complexity: Literal["params", "flops"] = "params"
    edges_per_node: int = Field(default=2, ge=1, le=8, description="incoming edges kept per node when "
                                "discretising")
    mode: Literal["darts", "random"] = Field(default="darts", description="darts: KDL-DARTS; random: a genotype "
                                             "drawn uniformly from the same space (the control)")
    random_seed: int = Field(default=0, ge=0, description="mode random: which random genotype")


class CATParams(Params):
    """Channel-aware transformer codec.

    The transmitter half is kept light (``encoder_width``, ``encoder_depth``); the receiver half may be heavier
    (``width``, ``depth``). ``heads`` must divide both widths.
    """

    tokens: int = Field(default=8, ge=1, le=256, description="tokens the embedding is split into")
    width: int = Field(default=64, ge=8, le=1024, description="decoder width")
    depth: int = Field(default=2, ge=1, le=12, description="decoder layers")
    encoder_width: int = Field(default=16, ge=4, le=1024, description="encoder width")
    encoder_depth: int = Field(default=1, ge=1, le=12, description="encoder layers")
    heads: int = Field(default=4, ge=1, le=16)
    max_symbols: int = Field(default=64, ge=1, le=4096, description="longest code, complex symbols per image")
    budgets: tuple[int, ...] = Field(default=(4, 8, 16, 32, 64), min_length=1,
                                     description="symbol budgets L sampled in training")
    backbone: Literal["transformer", "mlp"] = Field(
        default="transformer", description="token mixing: self-attention, or a fixed MLP over the tokens (ablation)")
    encoder_snr: bool = Field(default=True, description="condition the encoder on the SNR (false: ablation)")
    decoder_no_eff: bool = Field(default=True, description="give the decoder each symbol's no_eff (false: only the "
                                                           "per-example noise variance of the SNR; ablation)")

    @model_validator(mode="after")
    def _consistent(self):
        for name in ("width", "encoder_width"):
            if getattr(self, name) % self.heads:
                raise ValueError(f"{name} {getattr(self, name)} is not a multiple of heads {self.heads}")
        if self.max_symbols % self.tokens:
            raise ValueError(f"max_symbols {self.max_symbols} is not a multiple of tokens {self.tokens}")
        bad = [b for b in self.budgets if not 1 <= b <= self.max_symbols]
        if bad:
            raise ValueError(f"budgets {bad} outside 1..max_symbols ({self.max_symbols})")
        return self


class Stage1Params(Params):
    """Distillation of the teacher into the derived student, no channel."""

    epochs: int = Field(default=60, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=3e-3, gt=0.0)
    mse_weight: float = Field(default=1.0, ge=0.0)
    kl_weight: float = Field(default=0.5, ge=0.0)
    temperature: float = Field(default=4.0, gt=0.0)
    mode: Literal["distill", "scratch"] = Field(default="distill", description="distill from the teacher, or train "
                                                "the same student from scratch on the labels (the control)")
    augment: AugmentParams | None = Field(default=AugmentParams(), description="random warps of the training "
                                          "images, labelled by the teacher; null: none")
    views: int = Field(default=8, ge=0, le=1000, description="warped copies of each training image labelled by "
                       "the teacher once, one drawn per image and epoch; 0: warp and label every batch afresh")

    @model_validator(mode="after")
    def _distillation_fields(self):
        distill_only = sorted({"mse_weight", "kl_weight", "temperature"} & self.model_fields_set)
        if self.mode == "scratch" and distill_only:
            raise ValueError(f"{', '.join(distill_only)} do not apply to mode scratch (no teacher)")
        return self


#: a stage-2 training channel: a built-in name with default parameters, or a channel spec like the scenario's
#: ``channels`` entries (``{type: tf, function: mypkg.chan:fn}``, ``{type: rayleigh, fading: block}``)
TrainingChannel = Annotated[
    Annotated[Literal["awgn", "rayleigh", "ofdm"], Tag("channel[name]")] | Annotated[ChannelSpec, Tag("channel[spec]")],
    Discriminator(lambda value: "channel[name]" if isinstance(value, str) else "channel[spec]"),
]


def channel_label(channel: str | ChannelSpec) -> str:
    """A training channel's label: the name itself, or a spec's ``name`` (default: its type)."""
    return channel if isinstance(channel, str) else channel.key


class Stage2Params(Params):
    """Robust training of the CAT codec and the classifier head through the channels."""

    epochs: int = Field(default=40, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=2e-3, gt=0.0)
    snr_min: float = Field(default=-10.0, ge=-50.0, le=60.0, description="dB, Es/N0")
    snr_max: float = Field(default=20.0, ge=-50.0, le=60.0)
    channels: tuple[TrainingChannel, ...] = Field(default=("awgn", "rayleigh", "ofdm"), min_length=1)
    feature_weight: float = Field(default=1.0, ge=0.0)
    task_weight: float = Field(default=1.0, ge=0.0)
    student_lr: float = Field(default=0.0, ge=0.0, description="0: student frozen")

    @model_validator(mode="after")
    def _range(self):
        if self.snr_max < self.snr_min:
            raise ValueError(f"snr_max ({self.snr_max}) is below snr_min ({self.snr_min})")
        meanings: dict[str, set[str]] = {}
        for c in self.channels:  # a repeated name is fine (drawn more often); one label for two channels is not
            meanings.setdefault(channel_label(c), set()).add(c if isinstance(c, str) else repr(c.canonical()))
        clashes = sorted(label for label, specs in meanings.items() if len(specs) > 1)
        if clashes:
            raise ValueError(f"channels: the label {clashes[0]!r} names two different channels; give the specs "
                             "distinct `name`s")
        return self


class PipelineParams(Params):
    """Every training setting of the RKD-SC link."""

    teacher: TeacherParams = TeacherParams()
    search: SearchParams = SearchParams()
    stage1: Stage1Params = Stage1Params()
    stage2: Stage2Params = Stage2Params()
    cat: CATParams = CATParams()
    train_seed: int = Field(default=0, ge=0)


class RKDSCParams(PipelineParams):
    """Every setting of the ``rkdsc`` link: the pipeline's, and the symbols sent per image."""

    symbols: int = Field(default=16, ge=1, le=4096, description="complex symbols per image in the sweep")
