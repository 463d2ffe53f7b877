"""The baseline links' settings: the shared student settings, deep JSCC (classifier and reconstruction),
separate source/channel coding, digital features and non-robust KD.

Only pydantic models live here, no torch: validating a scenario (``semsim validate``) reads them without importing
the baselines' networks and training code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from links.params import BitsPerSymbol, TeacherParams
from links.rkdsc.params import PipelineParams, SearchParams, Stage1Params
from simulator.core.params import Params

if TYPE_CHECKING:
    import torch

#: source codecs of the separate link (links.baselines.source_codec)
CodecName = Literal["raw", "jpeg", "webp"]


class StudentParams(Params):
    """Training settings shared with the ``rkdsc`` link; equal settings reuse its cached artifacts."""

    teacher: TeacherParams = Field(default=TeacherParams(), description="the teacher, as in rkdsc")
    search: SearchParams = Field(default=SearchParams(), description="KDL-DARTS search, as in rkdsc")
    stage1: Stage1Params = Field(default=Stage1Params(), description="stage-1 distillation, as in rkdsc")
    train_seed: int = Field(default=0, ge=0, description="seed of initialisation and batching, as in rkdsc")

    def pipeline(self) -> PipelineParams:
        """These settings as RKD-SC pipeline settings (stage 2 and the CAT codec are not used)."""
        return PipelineParams(teacher=self.teacher, search=self.search, stage1=self.stage1,
                              train_seed=self.train_seed)


class KDAnalogParams(StudentParams):
    """Every setting of the ``kd-analog`` link."""

    symbols: int = Field(default=16, ge=1, le=4096, description="complex channel uses per image")


class DigitalFeaturesParams(StudentParams):
    """Every setting of the ``digital-features`` link."""

    symbols: int = Field(default=64, ge=1, le=4096, description="complex channel uses per image")
    bits_per_symbol: BitsPerSymbol = Field(default=4, description="m; 2^m-QAM, 1 = BPSK")
    code_rate: float = Field(default=0.5, ge=0.2, le=0.92, description="LDPC code rate k/n (target)")


class JSCCTrainingParams(Params):
    """Settings every deep JSCC model shares: its budget, its size, and how it is trained through the channel."""

    symbols: int = Field(default=16, ge=1, le=4096,
                         description="complex channel uses per image; the model is trained for this budget")
    train_snr_db: float = Field(default=10.0, ge=-30.0, le=50.0, description="the one training SNR, Es/N0 in dB "
                                "(not with snr_adaptive)")
    snr_adaptive: bool = Field(default=False, description="ADJSCC-style: encoder and decoder conditioned on the SNR, "
                               "trained with an SNR drawn per example from train_snr_range (conv encoder only)")
    train_snr_range: tuple[float, float] = Field(default=(-10.0, 20.0), description="snr_adaptive: training SNR "
                                                 "range in dB, uniform per example")
    train_channel: Literal["awgn", "rayleigh"] = Field(default="awgn",
                                                       description="channel type trained through (default params)")
    width: int = Field(default=32, ge=2, le=512, description="conv channels; the MLPs have 4 x width hidden units")
    epochs: int = Field(default=60, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=2e-3, gt=0.0, le=1.0)
    train_seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _training_snr_fields(self):
        if "train_snr_range" in self.model_fields_set and not self.snr_adaptive:
            raise ValueError("train_snr_range applies only with snr_adaptive: true (otherwise train_snr_db)")
        if self.snr_adaptive and "train_snr_db" in self.model_fields_set:
            raise ValueError("train_snr_db does not apply with snr_adaptive: true (use train_snr_range)")
        low, high = self.train_snr_range
        if not -30.0 <= low <= high <= 50.0:
            raise ValueError(f"train_snr_range must be [low, high] with -30 <= low <= high <= 50 dB, got "
                             f"[{low:g}, {high:g}]")
        return self

    def training_snr(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """SNRs in dB for ``count`` training examples: the one training SNR, or uniform over the range."""
        import torch

        if not self.snr_adaptive:
            return torch.full((count,), self.train_snr_db)
        low, high = self.train_snr_range
        return low + (high - low) * torch.rand(count, generator=generator)

    def training_label(self) -> str:
        return (f"SNR-adaptive, {self.train_snr_range[0]:g} to {self.train_snr_range[1]:g} dB" if self.snr_adaptive
                else f"at {self.train_snr_db:g} dB")

    def validation_snrs(self) -> tuple[float, ...]:
        """SNRs (dB) at which a trained model's validation score is recorded: the training SNR, or the range's
        ends and middle."""
        if not self.snr_adaptive:
            return (self.train_snr_db,)
        low, high = self.train_snr_range
        return (low, (low + high) / 2, high)


class DeepJSCCParams(JSCCTrainingParams):
    """Every setting of the deep JSCC link; all but ``teacher`` (keyed by its artifact) key the trained model."""

    encoder: Literal["conv", "teacher"] = Field(default="conv",
                                                description="conv: CNN on the image; teacher: frozen teacher + MLP")
    teacher: TeacherParams = Field(default=TeacherParams(),
                                   description="encoder: teacher only; the RKD-SC link's teacher by default")

    @model_validator(mode="after")
    def _teacher_only_for_the_teacher_encoder(self):
        if "teacher" in self.model_fields_set and self.encoder != "teacher":
            raise ValueError("teacher applies only to encoder: teacher")
        if self.snr_adaptive and self.encoder != "conv":
            raise ValueError("snr_adaptive applies only to encoder: conv")
        return self


class ReconstructionParams(JSCCTrainingParams):
    """Every setting of the reconstruction link; all but ``teacher`` key the trained model."""

    teacher: TeacherParams = Field(default=TeacherParams(), description="the clean-image classifier that scores "
                                   "the reconstructions; the RKD-SC link's teacher by default")


class SeparateParams(Params):
    """Every setting of the ``separate`` link."""

    symbols: int = Field(default=64, ge=1, le=1_000_000, description="complex channel uses per image")
    bits_per_symbol: BitsPerSymbol = Field(default=4, description="m; 2^m-QAM, 1 = BPSK")
    code_rate: float = Field(default=0.5, ge=0.2, le=0.925,
                             description="LDPC code rate; k = round(code_rate * n) per codeword")
    codewords: int | None = Field(default=None, ge=1, le=1_000_000,
                                  description="LDPC codewords per image; null: the fewest with k <= 8448")
    num_iter: int = Field(default=20, ge=1, le=200, description="belief-propagation iterations")
    cn_update: Literal["boxplus-phi", "boxplus", "minsum", "offset-minsum"] = Field(
        default="boxplus-phi", description="LDPC check-node update")
    demapper: Literal["app", "maxlog"] = Field(default="app", description="QAM demapper")
    crc: Literal["CRC24A", "CRC16", "CRC11", "CRC6"] = Field(
        default="CRC16", description="5G CRC that detects a lost image")
    codec: CodecName = Field(default="raw", description="source codec: raw quantised pixels, jpeg or webp")
    on_failure: Literal["error", "blank", "mean"] = Field(
        default="error", description="a lost image counts as a misclassification (error), or the classifier "
                                     "sees an all-zero image (blank) or the mean training image (mean)")
    teacher: TeacherParams = Field(default_factory=TeacherParams,
                                   description="the classifier trained on clean images (RKD-SC's teacher)")
    train_seed: int = Field(default=0, ge=0, description="seed of the classifier's training")

    @model_validator(mode="after")
    def _codewords_divide_symbols(self):
        if self.codewords is not None and self.symbols % self.codewords:
            raise ValueError(f"codewords ({self.codewords}) must divide symbols ({self.symbols})")
        return self
