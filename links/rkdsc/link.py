"""The ``rkdsc`` link: student + CAT encoder at the transmitter, CAT decoder + classifier at the receiver."""

from __future__ import annotations

from typing import Any

import torch

from links.complexity import count_macs, count_parameters
from links.declarations import RKDSCDeclaration
from links.image_link import ImageLink
from links.rkdsc.params import PipelineParams
from links.rkdsc.pipeline import prepare
from simulator.core.channel import ChannelOutput
from simulator.core.errors import UserError
from simulator.core.link import TensorDict
from simulator.io.artifacts import Artifact

#: images per transmitter or receiver call on a CPU (see RKDSCLink.receive_batch_hint)
CPU_CALL_IMAGES = 1024


class RKDSCLink(RKDSCDeclaration, ImageLink):
    """RKD-SC semantic link: distilled student encoder, channel-aware transformer codec, image classifier.

    Building the link loads its trained stages from the artifact cache and trains the missing ones
    (teacher, KDL-DARTS search, stage 1, stage 2). Metric: top-1 ``accuracy``. ``symbols`` is the symbol
    budget L per image used in the sweep (one trained model serves every budget up to ``cat.max_symbols``).
    """

    snr_adaptive = True  # the CAT encoder is conditioned on the SNR

    def __init__(self, params=None, context=None):
        super().__init__(params, context)
        if self.params.symbols > self.params.cat.max_symbols:
            raise UserError(f"symbols ({self.params.symbols}) exceeds cat.max_symbols ({self.params.cat.max_symbols})")
        training = PipelineParams(**{name: getattr(self.params, name) for name in PipelineParams.model_fields})
        self.models = prepare(training, self.data, self.data.key_config(), self.device)
        # an encoder without SNR input (the ablation `cat: {encoder_snr: false}`) runs once per batch
        self.snr_adaptive = self.params.cat.encoder_snr

    def trained_artifacts(self) -> tuple[Artifact, ...]:
        """Teacher, search, student and stage 2."""
        return tuple(self.models.artifacts.values())

    @property
    def channel_uses(self) -> int:
        return self.params.symbols

    @property
    def receive_batch_hint(self) -> int | None:
        # The CAT transformers ran 1.5x slower per image at 6,480 images per call than at 360-1,440 on 2 CPU
        # cores (benchmarks/semantic_sweep.py); a GPU wants the largest calls.
        return None if self.device != "cpu" else CPU_CALL_IMAGES

    def encode(self, batch: TensorDict) -> TensorDict:
        embedding = self.models.student(batch["images"])
        if self.snr_adaptive:
            return {"embedding": embedding}
        return {"embedding": embedding, "symbols": self.models.encoder(embedding, None, self.params.symbols)}

    def adapt_to_snr(self, encoded: TensorDict, snr_db: torch.Tensor) -> torch.Tensor:
        return self.models.encoder(encoded["embedding"], snr_db, self.params.symbols)

    def receive(self, received: ChannelOutput, snr_db: torch.Tensor) -> TensorDict:
        embedding = self.models.decoder(received.symbols, received.no_eff, snr_db)
        return {"prediction": self.models.head(embedding).argmax(dim=1)}

    def describe(self) -> dict[str, Any]:
        report = self.models.report
        teacher, student, stage2 = report["teacher"], report["student"], report["stage2"]
        complexity, lead = self._complexity(), report["teacher_lead"]
        return {
            **super().describe(),
            "teacher_type": self.params.teacher.type,
            "teacher_parameters": teacher["parameters"],
            "teacher_macs": teacher.get("macs"),
            "teacher_test_accuracy": teacher["test_accuracy"],
            "search_mode": self.params.search.mode,
            "student_mode": self.params.stage1.mode,
            "student_parameters": student["parameters"],
            "student_macs": student["macs"],
            "student_to_teacher_parameters": student["parameter_ratio"],
            "student_clean_test_accuracy": student["clean_test_accuracy"],
            "student_to_teacher_accuracy": student["clean_test_accuracy"] / max(teacher["test_accuracy"], 1e-9),
            "cat_parameters": stage2["cat_parameters"],
            "teacher_minus_student_points": 100 * lead.diff, "teacher_minus_student_low": 100 * lead.low,
            "teacher_minus_student_high": 100 * lead.high, "teacher_vs_student_p_mcnemar": lead.p_mcnemar,
            **complexity,
            "tx_to_teacher_parameters": complexity["tx_parameters"] / teacher["parameters"],
            "tx_to_teacher_macs": complexity["tx_macs"] / teacher["macs"] if teacher.get("macs") else None,
        }

    def _complexity(self) -> dict[str, int]:
        """Transmitter (student + CAT encoder) and receiver (CAT decoder + head) parameters and MACs per image."""
        m, symbols = self.models, self.params.symbols
        shape = tuple(self.data.split("test").images.shape[1:])
        dim = m.head.in_features
        device = next(m.head.parameters()).device
        snr = torch.zeros(1, device=device)
        encoder_macs = count_macs(m.encoder, call=lambda e: e(torch.zeros(1, dim, device=device), snr, symbols))
        decoder_macs = count_macs(m.decoder, call=lambda d: d(torch.zeros(1, symbols, dtype=torch.complex64,
                                                                          device=device),
                                                              torch.ones(1, symbols, device=device), snr))
        return {
            "tx_parameters": count_parameters(m.student) + count_parameters(m.encoder),
            "tx_macs": count_macs(m.student, shape) + encoder_macs,
            "rx_parameters": count_parameters(m.decoder) + count_parameters(m.head),
            "rx_macs": decoder_macs + count_macs(m.head, (dim,)),
        }
