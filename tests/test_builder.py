"""The CNN builder: the course's network as the course built it, and pools capped at the
feature map so that every configuration a sampler draws can be built and trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.models.builder import build_model, pool_size
from tuner.space import load_space

# The course's CNN as the shipped space enqueues it (16-32-64, 3x3, max pooling 2-2-4, dense 64).
COURSE_CNN: dict[str, Any] = dict(
    load_space("casia_cnn", search_dirs=[Path(__file__).parent.parent / "search_spaces"]).enqueue[0]
)


def test_the_course_cnn_keeps_its_pools() -> None:
    model = build_model("cnn", COURSE_CNN, (80, 60, 1), 55)
    assert [model.get_layer(f"pool_{i}").pool_size for i in (1, 2, 3)] == [(2, 2), (2, 2), (4, 4)]
    assert model.get_layer("flatten").output.shape[1] == 5 * 3 * 64  # 80x60 / 16


def test_a_pool_larger_than_its_feature_map_is_capped_at_the_map() -> None:
    # 80x60 -> pool 4 -> 20x15 -> pool 4 -> 5x3 -> pool 4 capped at 3 -> 1x1 -> no pool left.
    params = {
        **COURSE_CNN,
        "n_blocks": 4,
        "filters_4": 8,
        "pool_size_1": 4,
        "pool_size_2": 4,
        "pool_size_3": 4,
        "pool_size_4": 2,
    }
    model = build_model("cnn", params, (80, 60, 1), 55)
    assert model.get_layer("pool_3").pool_size == (3, 3)
    assert "pool_4" not in [layer.name for layer in model.layers], "a 1x1 map is not pooled"
    assert model.get_layer("flatten").output.shape[1] == 8
    assert pool_size(params, 3, 5, 3) == 3 and pool_size(params, 4, 1, 1) == 1
