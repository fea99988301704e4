"""Every built-in training recipe validates, and the issue's recipe grid is complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from innerworks.train import load_recipe
from innerworks.train.config import builtin_recipes, recipes_dir

CONFIGS = recipes_dir()
TRAINING_RECIPES = sorted(CONFIGS.rglob("*.yaml"))


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_recipe_validates(path: Path) -> None:
    recipe = load_recipe(path)
    assert path.stem in recipe.name  # names say which file they came from (run.json records the name)


def test_recipe_names_are_unique() -> None:
    names = [load_recipe(p).name for p in TRAINING_RECIPES]
    assert len(names) == len(set(names))


def test_synthetic_and_natural_recipe_grid_is_complete() -> None:
    names = {p.relative_to(CONFIGS).with_suffix("").as_posix() for p in TRAINING_RECIPES}
    for cell in ("gru", "lstm", "ugrnn"):
        for n in range(2, 7):
            assert f"synthetic/categorical{n}_{cell}" in names
        for n in (3, 5):
            assert f"synthetic/ordered{n}_{cell}" in names
    for corpus in ("ag_news", "yelp5", "imdb", "sst5"):
        assert f"natural/{corpus}_gru" in names
    assert "quick" in names and "natural/ag_news_quick" in names


def test_builtin_names_resolve_and_are_listed() -> None:
    names = builtin_recipes()
    assert len(names) == len(TRAINING_RECIPES) and "flipflop/tanh16" in names
    assert load_recipe("flipflop/tanh16").name == load_recipe(CONFIGS / "flipflop" / "tanh16.yaml").name
