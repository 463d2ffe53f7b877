"""The built-in link types as scenarios see them: each type's parameters, description and metrics, without its
implementation.

The ``semsim.links`` entry points name these declarations. Validating a scenario and ``semsim list`` read them
only, so neither imports torch nor the networks; each implementation subclasses its declaration and is imported
when a link is built (:meth:`simulator.core.registry.Registry.resolve`). A plug-in link needs none of this: its
entry point (or ``module:Class`` path) may name the link class itself.
"""

from __future__ import annotations

from typing import ClassVar

from links.baselines.params import (
    DeepJSCCParams,
    DigitalFeaturesParams,
    KDAnalogParams,
    ReconstructionParams,
    SeparateParams,
)
from links.params import DigitalParams, KerasParams
from links.rkdsc.params import RKDSCParams
from simulator.core.params import Params


class LinkDeclaration:
    """What a scenario needs of a link type: ``Params`` (its fields), ``description`` (one line for ``semsim
    list``), ``metrics`` (what it reports; the first drives the stopping rule) and where the implementation is."""

    implementation: ClassVar[str]
    description: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    Params: ClassVar[type[Params]]


class DigitalDeclaration(LinkDeclaration):
    """The ``digital`` link type."""

    implementation = "links.digital:DigitalLink"
    description = "Bits -> optional 5G LDPC -> QAM -> demapper (app/maxlog) -> LDPC decoder; BER and BLER"
    metrics = ("ber", "bler")
    Params = DigitalParams


class RKDSCDeclaration(LinkDeclaration):
    """The ``rkdsc`` link type."""

    implementation = "links.rkdsc.link:RKDSCLink"
    description = "RKD-SC: distilled student + channel-aware transformer codec, top-1 accuracy"
    metrics = ("accuracy",)
    Params = RKDSCParams


class SeparateDeclaration(LinkDeclaration):
    """The ``separate`` link type."""

    implementation = "links.baselines.separate:SeparateLink"
    description = "Separate coding: image codec (raw/JPEG/WebP) + CRC + 5G LDPC + QAM, classifier on decoded image"
    metrics = ("accuracy", "ber", "bler")
    Params = SeparateParams


class DigitalFeaturesDeclaration(LinkDeclaration):
    """The ``digital-features`` link type."""

    implementation = "links.baselines.digital_features:DigitalFeaturesLink"
    description = "Digital features: student embedding -> PCA + uniform quantiser -> 5G LDPC -> QAM -> classifier"
    metrics = ("accuracy", "ber", "bler")
    Params = DigitalFeaturesParams


class DeepJSCCDeclaration(LinkDeclaration):
    """The ``deepjscc`` link type."""

    implementation = "links.baselines.deepjscc:DeepJSCCLink"
    description = ("Deep JSCC: CNN (or teacher + MLP) encoder -> symbols -> MLP decoder, trained at one SNR "
                   "(or SNR-adaptive, ADJSCC-style)")
    metrics = ("accuracy",)
    Params = DeepJSCCParams


class DeepJSCCReconstructionDeclaration(LinkDeclaration):
    """The ``deepjscc-recon`` link type."""

    implementation = "links.baselines.jscc_reconstruction:DeepJSCCReconstructionLink"
    description = "Deep JSCC reconstructing the image (PSNR, SSIM), classified by the clean-image teacher"
    metrics = ("psnr", "ssim", "accuracy")
    Params = ReconstructionParams


class KDAnalogDeclaration(LinkDeclaration):
    """The ``kd-analog`` link type."""

    implementation = "links.baselines.kd_analog:KDAnalogLink"
    description = "Non-robust KD: stage-1 student embedding (PCA) sent as analog symbols, no channel training"
    metrics = ("accuracy",)
    Params = KDAnalogParams


class KerasDeclaration(LinkDeclaration):
    """The ``keras`` link type."""

    implementation = "links.keras_link:KerasLink"
    description = "A Keras encoder/decoder pair (.keras files or module:factory) through the DLPack bridge"
    metrics = ("accuracy",)
    Params = KerasParams
