"""The CLIP teacher through Hugging Face transformers, on a tiny randomly initialised model saved locally."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from links.params import TeacherParams
from links.rkdsc.params import PipelineParams
from links.rkdsc.pipeline import prepare
from links.teacher import CLIP_MEAN, CLIPTeacher
from simulator.core.errors import UserError
from simulator.data.source import DigitsSource


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=16)
    CLIPVisionModelWithProjection(config).save_pretrained(directory)
    return directory


def test_clip_teacher_embeds_resized_grey_images_with_clip_statistics(tiny_clip):
    teacher = CLIPTeacher(TeacherParams(type="clip", clip_model=str(tiny_clip), offline=True), 1, 10).eval()
    assert teacher.embed_dim == 16 and teacher.image_size == 32
    images = torch.rand(3, 1, 8, 8)
    embedding, logits = teacher(images)
    assert embedding.shape == (3, 16) and logits.shape == (3, 10)
    # the same picture in RGB at the model's size gives the same embedding
    rgb = torch.nn.functional.interpolate(images.expand(-1, 3, -1, -1), size=(32, 32), mode="bicubic",
                                          align_corners=False).clamp(0, 1)
    assert torch.allclose(teacher.embed(rgb), embedding, atol=1e-5)
    assert teacher.normalize.mean.item() == pytest.approx(sum(CLIP_MEAN) / 3)


def test_pipeline_with_clip_teacher_stores_only_the_head(tiny_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path))
    params = PipelineParams(
        teacher={"type": "clip", "clip_model": str(tiny_clip), "offline": True, "epochs": 2, "batch_size": 256},
        search={"cells": 1, "nodes": 1, "channels": 4, "epochs": 1, "batch_size": 256},
        stage1={"epochs": 1, "batch_size": 256},
        stage2={"epochs": 1, "batch_size": 256, "channels": ["awgn"]},
        cat={"tokens": 2, "width": 8, "depth": 1, "heads": 1, "max_symbols": 8, "budgets": [8]},
    )
    models = prepare(params, DigitsSource(), {"type": "digits"}, "cpu")
    clip_parameters = sum(p.numel() for p in models.teacher.encoder.parameters())
    assert models.report["teacher"]["parameters"] == clip_parameters + 16 * 10 + 10
    stored = load_file(str(models.artifacts["teacher"].weights_path))
    assert set(stored) == {"normalize.mean", "normalize.std", "head.weight", "head.bias"}
    assert models.student(torch.rand(2, 1, 8, 8)).shape == (2, 16)


def test_clip_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="do not apply to teacher type clip"):
        TeacherParams(type="clip", depth=3)
    with pytest.raises(UserError, match="cannot load CLIP model"):
        CLIPTeacher(TeacherParams(type="clip", clip_model=str(tmp_path / "missing"), offline=True), 1, 10)
