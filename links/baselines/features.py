"""The RKD-SC stage-1 student as a feature extractor for baseline links, and a PCA of its embeddings.

Baselines built on the student (``kd-analog``, ``digital-features``) take the same training settings as the
``rkdsc`` link (``teacher``, ``search``, ``stage1``, ``train_seed``), so with equal settings they load the very
artifacts RKD-SC trained (teacher -> KDL-DARTS search -> stage-1 student) and train nothing of their own. Their
classifier is the teacher's linear head applied to the student embedding: stage 1 distils the student through that
head (its KL term), so ``head(student(images))`` is the student's clean classifier.

The PCA is fitted on the student's embeddings of the training split when a link is built: it is cheap (one
student pass and one ``D x D`` eigendecomposition, in float64) and deterministic, so it is not cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from links.baselines.params import StudentParams
from links.complexity import count_macs, count_parameters
from links.rkdsc.pipeline import prepare_student
from links.teacher_stage import prepare_teacher
from simulator.data.source import DataSource
from simulator.io.artifacts import Artifact

#: images per student call when embedding a split
EMBED_BATCH = 512




@dataclass
class StudentFeatures:
    """The frozen stage-1 student and classifier, and the student's embeddings of the training and validation splits.

    Attributes:
        student: raw images ``[B, C, H, W]`` in ``[0, 1]`` -> embedding ``[B, D]`` (eval mode, no gradients).
        head: the student's classifier, embedding ``[B, D]`` -> logits ``[B, classes]`` (the teacher's linear head
            for a distilled student, its own for ``stage1: {mode: scratch}``).
        image_shape: ``(C, H, W)`` of one image.
        embeddings: ``{"train": [N, D], "val": [M, D]}`` student embeddings on the device.
        labels: ``{"train": [N], "val": [M]}`` int64 on the device.
        report: stage metrics (``teacher``, ``search``, ``student``) from the artifacts' sidecars.
        artifacts: the teacher, search and student artifacts the features come from.
    """

    student: nn.Module
    head: nn.Linear
    image_shape: tuple[int, int, int]
    embeddings: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    report: dict[str, Any]
    artifacts: tuple[Artifact, ...] = ()

    @property
    def embed_dim(self) -> int:
        return int(self.embeddings["train"].shape[1])

    def describe(self) -> dict[str, Any]:
        """Student and classifier facts for ``Link.describe()``."""
        teacher, student = self.report["teacher"], self.report["student"]
        return {
            "teacher_parameters": teacher["parameters"],
            "teacher_test_accuracy": teacher["test_accuracy"],
            "student_parameters": count_parameters(self.student),
            "student_macs": count_macs(self.student, self.image_shape),
            "student_clean_test_accuracy": student["clean_test_accuracy"],
            "embedding_dim": self.embed_dim,
        }


def prepare_features(params: StudentParams, data: DataSource, data_config: dict, device: str = "cpu"
                     ) -> StudentFeatures:
    """Load (or train, through the RKD-SC pipeline) the teacher and the stage-1 student; embed train and val."""
    pipeline = params.pipeline()
    teacher = prepare_teacher(pipeline.teacher, data, data_config, pipeline.train_seed, device)
    student = prepare_student(pipeline, teacher, data, device)
    train = data.split("train")
    embeddings = {name: embed(student.student, data.split(name).images.to(device)) for name in ("train", "val")}
    labels = {name: data.split(name).labels.to(device) for name in ("train", "val")}
    return StudentFeatures(student.student, student.head, tuple(train.images.shape[1:]), embeddings, labels,
                           {**teacher.report, **student.report},
                           (teacher.artifact, *student.artifacts.values()))


@torch.no_grad()
def embed(student: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Student embeddings ``[N, D]`` of ``images`` ``[N, C, H, W]``, in batches."""
    return torch.cat([student(images[i : i + EMBED_BATCH]) for i in range(0, len(images), EMBED_BATCH)])


class PCA:
    """Principal components of embeddings: ``project`` ``[B, D] -> [B, c]``, ``restore`` ``[B, c] -> [B, D]``.

    ``project(e) = (e - mean) @ basis`` and ``restore(z) = z @ basis.T + mean``, where ``basis`` ``[D, c]`` holds
    the ``c`` eigenvectors of the embeddings' covariance with the largest eigenvalues (``variances`` ``[c]``,
    decreasing) as orthonormal columns. Fitted in float64 for determinism and accuracy; applied in float32.

    Example::

        pca = PCA.fit(train_embeddings, 8)
        approx = pca.restore(pca.project(embeddings))   # rank-8 approximation
    """

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor, variances: torch.Tensor):
        self.mean, self.basis, self.variances = mean, basis, variances

    @classmethod
    def fit(cls, embeddings: torch.Tensor, components: int) -> PCA:
        """Top ``components`` principal components of ``embeddings`` ``[N, D]`` (1 <= components <= D)."""
        if not 1 <= components <= embeddings.shape[1]:
            raise ValueError(f"components ({components}) must be in 1..{embeddings.shape[1]}")
        x = embeddings.double()
        mean = x.mean(dim=0)
        centred = x - mean
        covariance = centred.T @ centred / max(len(x) - 1, 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        order = torch.argsort(eigenvalues, descending=True)[:components]
        basis = eigenvectors[:, order]
        # a sign convention makes the basis independent of the solver's choice: largest entry of each column > 0
        signs = torch.sign(basis.gather(0, basis.abs().argmax(dim=0, keepdim=True)))
        basis = basis * torch.where(signs == 0, 1.0, signs)
        dtype = embeddings.dtype
        return cls(mean.to(dtype), basis.to(dtype), eigenvalues[order].clamp_min(0).to(dtype))

    @property
    def components(self) -> int:
        return int(self.basis.shape[1])

    def leading(self, components: int) -> PCA:
        """The same PCA restricted to its first ``components`` components."""
        return PCA(self.mean, self.basis[:, :components], self.variances[:components])

    def project(self, embeddings: torch.Tensor) -> torch.Tensor:
        return (embeddings - self.mean) @ self.basis

    def restore(self, coefficients: torch.Tensor) -> torch.Tensor:
        return coefficients @ self.basis.T + self.mean

    @property
    def parameters(self) -> int:
        """Stored numbers: the basis and the mean."""
        return self.basis.numel() + self.mean.numel()

    @property
    def macs(self) -> int:
        """Multiply-accumulates per example of ``project`` (and of ``restore``)."""
        return self.basis.numel()
