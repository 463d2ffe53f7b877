"""The RKD-SC training pipeline: teacher -> KDL-DARTS search -> stage 1 (distillation) -> stage 2 (robust codec).

Each stage is an artifact (:mod:`simulator.io.artifacts`) keyed by its own settings and the keys of the stages it
builds on, so changing a stage-2 setting retrains stage 2 only, and a finished stage is loaded, not retrained.

The search (``search.mode: darts``) can be replaced by a genotype drawn uniformly from the same search space
(``mode: random``), the control that shows what the search buys.
Stage 1 distils the teacher into the student without a channel: ``mse_weight * MSE(student, teacher embedding)
+ kl_weight * T^2 * KL(teacher logits / T || teacher head(student embedding) / T)``, on randomly warped copies of
the training images (``stage1.augment``; ``stage1.views`` copies per image, each labelled by the teacher once).
``stage1.mode: scratch`` is the control without distillation: the same student, a fresh linear head,
cross-entropy on the labels only, the same augmented images.
Stage 2 trains the CAT encoder/decoder and the classifier head through semsim's channels, with a random channel
type per batch, a random symbol budget per batch and an SNR drawn uniformly per example:
``feature_weight * MSE(decoded, target embedding) + task_weight * cross-entropy``, where the target is the
teacher's embedding (the student's own clean embedding for a scratch student, which has no teacher); the student
is frozen (``student_lr: 0``) or fine-tuned at ``student_lr``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from links.augment import augment
from links.complexity import count_macs, count_parameters
from links.rkdsc import darts
from links.rkdsc.cat import CATDecoder, CATEncoder
from links.rkdsc.params import CATParams, PipelineParams, SearchParams, Stage1Params, channel_label
from links.teacher_stage import TEACHER_RECIPE, TeacherStage, embed_in_batches, prepare_teacher, teacher_outputs
from links.training import EpochProgress, accuracy, cosine_lr, initialised, minibatches, model_card, plot_curves
from simulator.channels import CHANNELS
from simulator.core.paired import PairedDifference, paired_difference
from simulator.core.seeding import derive_seed, seeded
from simulator.data.source import DataSource
from simulator.io.artifacts import Artifact, artifact

#: version of each stage's training code, part of its artifact key: bump a stage's number when a change to its code
#: changes what it trains, so that weights trained by the old code are not reused under the same key (the
#: teacher's lives with its code, in links/teacher_stage.py)
RECIPES = {"teacher": TEACHER_RECIPE, "search": 1, "student": 2, "stage2": 1}




@dataclass
class RKDSCModels:
    """The trained pieces, in eval mode, and what was measured while making them."""

    teacher: nn.Module
    student: nn.Module
    encoder: CATEncoder
    decoder: CATDecoder
    head: nn.Linear
    report: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)


@dataclass
class StudentStage:
    """The stage-1 student (raw images ``[B, C, H, W]`` -> embedding ``[B, D]``, frozen), its classifier
    (embedding -> logits: the teacher's head for a distilled student, its own for a scratch one) and artifacts."""

    student: nn.Module
    head: nn.Linear
    artifacts: dict[str, Artifact]
    report: dict[str, Any]


def prepare_student(params: PipelineParams, teacher: TeacherStage, data: DataSource,
                    device: str = "cpu") -> StudentStage:
    """KDL-DARTS search and stage-1 distillation (no channel), loaded from the cache or trained."""
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    channels, size = train.images.shape[1], train.images.shape[-1]
    seed, targets, model = params.train_seed, teacher.targets, teacher.teacher
    search_art = artifact("search", {"search": params.search.model_dump(mode="json"), "seed": seed},
                          {"teacher": teacher.artifact.key}, recipe=RECIPES["search"])
    if not search_art.exists():
        _search(params.search, train, val, targets, model.embed_dim, search_art, seed, device)
    genotype = darts.Genotype.from_dict(search_art.meta()["metrics"]["genotype"])
    report = {"search": {k: v for k, v in search_art.meta()["metrics"].items() if k != "history"}}

    with initialised(seed, "student"):
        student = nn.ModuleDict({"student": _student(genotype, model, channels, device),
                                 "head": copy.deepcopy(model.head) if params.stage1.mode == "distill"
                                 else nn.Linear(model.embed_dim, data.num_classes)}).to(device)
    student_art = artifact("student", {"stage1": params.stage1.model_dump(mode="json"), "seed": seed},
                           {"teacher": teacher.artifact.key, "search": search_art.key}, recipe=RECIPES["student"])
    if not student_art.exists():
        _stage1(student, model, params.stage1, train, test, targets, student_art, seed, device, size)
    student_art.load_into(student, device).eval()
    student.requires_grad_(False)
    report["student"] = student_art.meta()["metrics"]
    return StudentStage(student["student"], student["head"], {"search": search_art, "student": student_art}, report)


def prepare(params: PipelineParams, data: DataSource, data_config: dict, device: str = "cpu") -> RKDSCModels:
    """Load every stage from the cache, training the ones that are missing."""
    seed = params.train_seed
    teacher_stage = prepare_teacher(params.teacher, data, data_config, seed, device)
    student_stage = prepare_student(params, teacher_stage, data, device)
    teacher, student = teacher_stage.teacher, student_stage.student
    report = {**teacher_stage.report, **student_stage.report,
              "teacher_lead": teacher_lead(teacher_stage, student_stage, data.split("test"), device)}

    with initialised(seed, "codec"):
        codec = _codec(params.cat, teacher.embed_dim, student_stage, device)
    channels = training_channels(params.stage2.channels, device)
    stage2_art = artifact("stage2", {"stage2": params.stage2.model_dump(mode="json"),
                                     "cat": params.cat.model_dump(mode="json"), "seed": seed,
                                     "channels": {label: c.identity() for label, c in channels.items()}},
                          {"student": student_stage.artifacts["student"].key}, recipe=RECIPES["stage2"])
    if not stage2_art.exists():
        target = (teacher_stage.targets["train"]["embedding"] if params.stage1.mode == "distill"
                  else embed_in_batches(student, data.split("train").images.to(device)))
        _stage2(codec, params, channels, data.split("train"), data.split("val"), target, stage2_art, seed, device)
    stage2_art.load_into(codec, device).eval()
    codec.requires_grad_(False)
    report["stage2"] = stage2_art.meta()["metrics"]
    return RKDSCModels(teacher, codec["student"], codec["encoder"], codec["decoder"], codec["head"], report,
                       {"teacher": teacher_stage.artifact, **student_stage.artifacts, "stage2": stage2_art})


def teacher_lead(teacher: TeacherStage, student: StudentStage, test, device: str) -> PairedDifference:
    """The teacher's clean test accuracy minus the stage-1 student's (``head(student(x))``), paired over the same
    test images (Newcombe interval, McNemar's p); the teacher's predictions are its cached test logits."""
    labels = test.labels.to(device)
    teacher_correct = teacher.targets["test"]["logits"].argmax(dim=1) == labels
    with torch.no_grad():
        embedding = embed_in_batches(student.student, test.images.to(device))
        student_correct = student.head(embedding).argmax(dim=1) == labels
    return paired_difference(teacher_correct.cpu().numpy(), student_correct.cpu().numpy())


def _codec(cat: CATParams, embed_dim: int, student: StudentStage, device: str) -> nn.ModuleDict:
    """Stage-2 modules: CAT encoder and decoder, a classifier head started from the student's, the student."""
    return nn.ModuleDict({
        "encoder": CATEncoder(cat, embed_dim),
        "decoder": CATDecoder(cat, embed_dim),
        "head": copy.deepcopy(student.head).requires_grad_(True),
        "student": copy.deepcopy(student.student).requires_grad_(True),
    }).to(device)


def _search(p: SearchParams, train, val, targets, embed_dim: int, art: Artifact, seed: int, device: str) -> None:
    if p.mode == "random":
        generator = torch.Generator().manual_seed(derive_seed(seed, "random-genotype", p.random_seed))
        result = darts.SearchResult(darts.random_genotype(p, min(train.images.shape[-2:]), generator), [], [])
    else:
        result = darts.search(p, train.images.to(device), targets["train"]["embedding"],
                              val.images.to(device), targets["val"]["embedding"], embed_dim, seed=seed, device=device)
    student = darts.build_student(result.genotype, train.images.shape[1], embed_dim)
    metrics = {"mode": p.mode, "genotype": result.genotype.to_dict(), "derived_parameters": count_parameters(student),
               "history": result.history}
    if result.history:
        plot_curves(result.history, art.directory / "curves.png", "KDL-DARTS search")
    art.save(None, metrics)


def _student(genotype, teacher: nn.Module, channels: int, device: str) -> nn.Module:
    """Derived student behind a copy of the teacher's input normalisation: raw images -> embedding."""
    return nn.Sequential(copy.deepcopy(teacher.normalize),
                         darts.build_student(genotype, channels, teacher.embed_dim)).to(device)


def _stage1(student: nn.ModuleDict, teacher, p: Stage1Params, train, test, targets, art: Artifact, seed: int,
            device: str, size: int) -> None:
    """Train ``student["student"]`` (and, from scratch, ``student["head"]``; a distilled student's head is the
    teacher's, frozen)."""
    net, head = student["student"][1], student["head"]
    scratch = p.mode == "scratch"
    head.requires_grad_(scratch)
    optimizer = torch.optim.Adam([*net.parameters(), *(head.parameters() if scratch else [])], lr=p.lr)
    labels = train.labels.to(device)
    views = _training_views(p, teacher, train.images.to(device), targets["train"], seed)

    start, history = art.load_checkpoint(student, optimizer, device)
    # channels-last trains the derived cell's small convolutions in 0.62x the time on CPU
    # (benchmarks/conv_layout.py); the weights go back to the default layout before they are scored and saved
    net.to(memory_format=torch.channels_last)
    progress = EpochProgress(f"stage 1 ({p.mode})", start, p.epochs)
    for epoch in progress:
        student.train()
        cosine_lr(optimizer, p.lr, epoch, p.epochs)
        generator = torch.Generator().manual_seed(derive_seed(seed, "stage1-batches", epoch))
        warps = torch.Generator().manual_seed(derive_seed(seed, "stage1-augment", epoch))
        view = torch.randint(len(views["images"]), (len(labels),), generator=warps)  # one view per image
        total = 0.0
        for index in minibatches(len(labels), p.batch_size, generator):
            if p.augment is not None and p.views == 0:  # warp and label this batch afresh
                batch = augment(views["images"][0][index], p.augment, warps)
                with torch.no_grad():
                    target, target_logits = teacher(batch)
            else:
                batch = views["images"][view[index], index]
                target, target_logits = views["embedding"][view[index], index], views["logits"][view[index], index]
            embedding = student["student"](batch.contiguous(memory_format=torch.channels_last))
            if scratch:
                loss = F.cross_entropy(head(embedding), labels[index])
            else:
                loss = p.mse_weight * F.mse_loss(embedding, target)
                if p.kl_weight:
                    tau = p.temperature
                    loss = loss + p.kl_weight * tau * tau * F.kl_div(
                        F.log_softmax(head(embedding) / tau, dim=1),
                        F.log_softmax(target_logits / tau, dim=1), log_target=True, reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        history.append({"epoch": epoch + 1, "loss": total / len(labels)})  # mean loss per image
        progress.show(history[-1])
        art.save_checkpoint(student, optimizer, epoch + 1, history)
    net.to(memory_format=torch.contiguous_format)
    student.eval()
    teacher_params = count_parameters(teacher)
    params = count_parameters(net)
    metrics = {
        "mode": p.mode,
        "parameters": params,
        "macs": count_macs(net, (train.images.shape[1], size, size)),
        "teacher_parameters": teacher_params,
        "parameter_ratio": params / teacher_params,
        "clean_test_accuracy": accuracy(lambda x: head(student["student"](x.to(device))), test.images,
                                        test.labels.to(device)),
        "embedding_mse_test": None if scratch else float(F.mse_loss(embed_in_batches(student["student"],
                                                                           test.images.to(device)),
                                                                    targets["test"]["embedding"])),
        "history": history,
    }
    plot_curves(history, art.directory / "curves.png", f"stage 1: {p.mode}")
    art.save(student, metrics, model_card("Student", metrics))


@torch.no_grad()
def _training_views(p: Stage1Params, teacher: nn.Module, images: torch.Tensor, clean: dict[str, torch.Tensor],
                    seed: int) -> dict[str, torch.Tensor]:
    """The stage-1 training images and the teacher's outputs on them, ``[V, N, ...]`` each.

    Without augmentation, or with ``views: 0`` (warped per batch), one view: the clean images. Otherwise
    ``p.views`` warped copies of the training split, each labelled by the teacher once.
    """
    if p.augment is None or p.views == 0:
        return {"images": images[None], "embedding": clean["embedding"][None], "logits": clean["logits"][None]}
    warped = torch.stack([augment(images, p.augment, torch.Generator().manual_seed(
        derive_seed(seed, "stage1-view", v))) for v in range(p.views)])
    outputs = [teacher_outputs(teacher, view) for view in warped]
    return {"images": warped, "embedding": torch.stack([o["embedding"] for o in outputs]),
            "logits": torch.stack([o["logits"] for o in outputs])}


def training_channels(channels, device: str) -> dict[str, Any]:
    """Stage-2 channels by label: names with their documented defaults, specs with their parameters."""
    return {channel_label(c): CHANNELS.resolve(c)(device=device) if isinstance(c, str) else c.build(device)
            for c in channels}


def _stage2(codec: nn.ModuleDict, params: PipelineParams, channels: dict[str, Any], train, val, t_emb: torch.Tensor,
            art: Artifact, seed: int, device: str) -> None:
    """Train the codec through ``channels`` (by label, see :func:`training_channels`); ``t_emb`` ``[N, D]`` is the
    embedding the decoder restores for each training image."""
    p = params.stage2
    groups = [{"params": [*codec["encoder"].parameters(), *codec["decoder"].parameters(),
                          *codec["head"].parameters()], "lr_scale": 1.0}]
    if p.student_lr > 0:
        groups.append({"params": list(codec["student"].parameters()), "lr_scale": p.student_lr / p.lr})
    else:
        codec["student"].requires_grad_(False)
    optimizer = torch.optim.Adam(groups, lr=p.lr)
    images, labels = train.images.to(device), train.labels.to(device)
    budgets = params.cat.budgets

    start, history = art.load_checkpoint(codec, optimizer, device)
    progress = EpochProgress("stage 2 (robust codec)", start, p.epochs)
    for epoch in progress:
        codec.train()
        cosine_lr(optimizer, p.lr, epoch, p.epochs)
        codec["student"].train(p.student_lr > 0)
        generator = torch.Generator().manual_seed(derive_seed(seed, "stage2-batches", epoch))
        total, correct = 0.0, 0
        for step, index in enumerate(minibatches(len(labels), p.batch_size, generator)):
            # this batch's channel type and symbol budget, and an SNR per image (dB), from the epoch's generator
            name = channel_label(p.channels[int(torch.randint(len(p.channels), (1,), generator=generator))])
            budget = budgets[int(torch.randint(len(budgets), (1,), generator=generator))]
            snr = (p.snr_min + (p.snr_max - p.snr_min) * torch.rand(len(index), generator=generator)).to(device)
            symbols = codec["encoder"](codec["student"](images[index]), snr, budget)
            with seeded(derive_seed(seed, "stage2-channel", epoch, step), device):
                received = channels[name](symbols, snr)
            decoded = codec["decoder"](received.symbols, received.no_eff, snr)
            logits = codec["head"](decoded)
            loss = p.feature_weight * F.mse_loss(decoded, t_emb[index]) + p.task_weight * F.cross_entropy(
                logits, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            correct += int((logits.argmax(dim=1) == labels[index]).sum())
        history.append({"epoch": epoch + 1, "loss": total / len(labels), "train_accuracy": correct / len(labels)})
        progress.show(history[-1])
        art.save_checkpoint(codec, optimizer, epoch + 1, history)
    codec.eval()
    check = channel_label(p.channels[0])  # validation accuracy at the longest code on the first training channel
    metrics = {
        "cat_parameters": count_parameters(codec["encoder"]) + count_parameters(codec["decoder"]),
        f"val_accuracy_{check}": {f"{snr:g} dB": _val_accuracy(codec, channels[check], val, params.cat.max_symbols,
                                                               snr, seed, device) for snr in (0.0, 10.0, 20.0)},
        "history": history,
    }
    plot_curves(history, art.directory / "curves.png", "stage 2: robust codec")
    art.save(codec, metrics, model_card("Stage-2 codec", metrics))


@torch.no_grad()
def _val_accuracy(codec, channel, val, budget: int, snr_db: float, seed: int, device: str) -> float:
    images = val.images.to(device)
    snr = torch.full((len(images),), snr_db, device=device)
    with seeded(derive_seed(seed, "stage2-val", snr_db), device):
        received = channel(codec["encoder"](codec["student"](images), snr, budget), snr)
    logits = codec["head"](codec["decoder"](received.symbols, received.no_eff, snr))
    return float((logits.argmax(dim=1).cpu() == val.labels).float().mean())
