"""KDL-DARTS: student construction, cost counting, the search and its complexity trade-off (the student's
distillation is stage 1 of the pipeline: tests/test_rkdsc.py)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from links.complexity import count_macs, count_parameters
from links.rkdsc.darts import CANDIDATE_OPS, Genotype, build_student, op_cost, search
from links.rkdsc.params import SearchParams

EMBED_DIM = 16
#: small and quick: 4 batches per epoch on a 4-channel supernet
TINY = SearchParams(channels=4, epochs=4, batch_size=32, arch_lr=3e-2, lambda_complexity=0.0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: tiny kernels gain nothing from two, and shared cores make two threads erratic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task() -> dict[str, torch.Tensor]:
    """Random 8x8 images and the embeddings a fixed random CNN "teacher" gives them (standardised per dim)."""
    g = torch.Generator().manual_seed(1234)
    images = torch.randn(192, 1, 8, 8, generator=g)
    conv = torch.randn(8, 1, 3, 3, generator=g)
    head = torch.randn(8, EMBED_DIM, generator=g)
    features = torch.relu(F.conv2d(images, conv, padding=1)).mean(dim=(2, 3))
    targets = features @ head
    targets = (targets - targets.mean(0)) / targets.std(0)
    return {"x_train": images[:128], "y_train": targets[:128], "x_val": images[128:], "y_val": targets[128:]}


def run_search(task: dict[str, torch.Tensor], config: SearchParams):
    return search(config, task["x_train"], task["y_train"], task["x_val"], task["y_val"], EMBED_DIM, seed=0)


@pytest.fixture(scope="module")
def searches(task) -> dict[str, object]:
    """The searches several tests look at: lambda 0 (twice, for determinism) and lambda 5."""
    state = torch.random.get_rng_state()
    results = {
        "plain": run_search(task, TINY),
        "plain_again": run_search(task, TINY),
        "penalised": run_search(task, TINY.model_copy(update={"lambda_complexity": 5.0})),
    }
    results["rng_untouched"] = torch.equal(state, torch.random.get_rng_state())
    return results


def example_genotype() -> Genotype:
    node_ops = ((("sep_conv_3x3", 0),), (("conv_3x3", 0), ("skip", 1)), (("max_pool_3x3", 1), ("sep_conv_5x5", 2)))
    return Genotype(cells=(node_ops,) * 3, reductions=(1,), channels=6)


# ------------------------------------------------------------------------------------------ building and counting


@pytest.mark.parametrize(("in_channels", "size"), [(1, 8), (3, 32)])
def test_student_maps_images_to_embeddings(in_channels, size):
    student = build_student(example_genotype(), in_channels, EMBED_DIM, seed=0)
    out = student(torch.randn(5, in_channels, size, size))
    assert out.shape == (5, EMBED_DIM)
    assert torch.isfinite(out).all()


def test_student_initialisation_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_student(example_genotype(), 1, EMBED_DIM, seed=3)
    b = build_student(example_genotype(), 1, EMBED_DIM, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_count_parameters_matches_numel():
    student = build_student(example_genotype(), 3, EMBED_DIM)
    assert count_parameters(student) == sum(p.numel() for p in student.parameters())


def test_count_flops_of_known_layers():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, (3, 10, 10)) == 8 * 10 * 10 * 3 * 3 * 3
    strided_depthwise = nn.Conv2d(6, 6, 5, stride=2, padding=2, groups=6)
    assert count_macs(strided_depthwise, (6, 8, 8)) == 6 * 4 * 4 * 5 * 5
    assert count_macs(nn.Linear(20, 7), (20,)) == 20 * 7
    net = nn.Sequential(conv, nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    net.train()
    assert count_macs(net, (3, 10, 10)) == 8 * 10 * 10 * 27 + 8 * 4
    assert net.training  # modes restored


def test_op_costs():
    assert op_cost("conv_3x3", 12, 1, 8, 8, "params") == 12 * 12 * 9 + 2 * 12  # conv + BatchNorm scale/shift
    assert op_cost("conv_3x3", 12, 1, 8, 8, "flops") == 12 * 12 * 9 * 8 * 8
    assert op_cost("sep_conv_5x5", 12, 2, 8, 8, "flops") == (12 * 25 + 12 * 12) * 4 * 4
    assert all(op_cost(name, 12, 2, 8, 8, kind) == 0
               for name in ("zero", "skip", "avg_pool_3x3", "max_pool_3x3") for kind in ("params", "flops"))


def test_genotype_rejects_zero_ops_and_bad_inputs():
    with pytest.raises(ValueError, match="zero"):
        Genotype(cells=(((("zero", 0),),),), reductions=(), channels=4)
    with pytest.raises(ValueError, match="input 2"):
        Genotype(cells=(((("skip", 0),), (("skip", 2),)),), reductions=(), channels=4)


# --------------------------------------------------------------------------------------------------- the search


def test_search_returns_a_valid_genotype(searches):
    result = searches["plain"]
    genotype = result.genotype
    assert len(genotype.cells) == TINY.cells and genotype.channels == TINY.channels
    assert genotype.reductions == (1,)  # the middle cell
    for cell in genotype.cells:
        assert len(cell) == TINY.nodes
        for node, choices in enumerate(cell):
            inputs = [state for _, state in choices]
            assert len(choices) == min(TINY.edges_per_node, node + 1)  # node i has i + 1 possible inputs
            assert len(set(inputs)) == len(inputs) and all(0 <= s <= node for s in inputs)
            assert all(op in CANDIDATE_OPS and op != "zero" for op, _ in choices)
    edges = TINY.nodes * (TINY.nodes + 1) // 2
    assert [len(result.alphas), len(result.alphas[0]), len(result.alphas[0][0])] == [3, edges, len(CANDIDATE_OPS)]
    assert sum(result.alphas[0][0]) == pytest.approx(1.0)
    assert [h["epoch"] for h in result.history] == list(range(1, TINY.epochs + 1))
    assert {"train_kd", "val_kd", "expected_complexity", "arch_entropy"} <= set(result.history[0])


def test_genotype_json_round_trip(searches):
    genotype = searches["plain"].genotype
    assert Genotype.from_dict(json.loads(json.dumps(genotype.to_dict()))) == genotype


def test_search_is_deterministic_and_keeps_global_rng(searches):
    assert searches["plain"].genotype == searches["plain_again"].genotype
    assert searches["plain"].history[-1]["train_kd"] == searches["plain_again"].history[-1]["train_kd"]
    assert searches["rng_untouched"]


def test_search_learns_the_distillation_task(searches):
    history = searches["plain"].history
    assert history[-1]["train_kd"] < history[0]["train_kd"]


def test_complexity_penalty_gives_a_smaller_student(searches):
    plain, penalised = searches["plain"], searches["penalised"]
    small = count_parameters(build_student(penalised.genotype, 1, EMBED_DIM))
    large = count_parameters(build_student(plain.genotype, 1, EMBED_DIM))
    assert small < large
    complexity = [h["expected_complexity"] for h in penalised.history]
    assert all(b < a for a, b in zip(complexity, complexity[1:], strict=False))
    assert complexity[-1] < plain.history[-1]["expected_complexity"]


def test_flops_search_reports_progress_once_per_epoch(task):
    seen = []
    config = SearchParams(cells=1, nodes=2, channels=4, epochs=2, batch_size=64, complexity="flops",
                          lambda_complexity=1.0)
    result = search(config, task["x_train"], task["y_train"], task["x_val"], task["y_val"], EMBED_DIM, seed=1,
                    progress=lambda epoch, metrics: seen.append((epoch, metrics["epoch"])))
    assert seen == [(1, 1), (2, 2)]
    assert result.history[-1]["expected_cost"] > 0  # MACs per example
