"""Every training recipe shipped in configs/ validates, and the issue's recipe grid is complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from innerworks.train import load_recipe

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# configs/repro/ holds reproduction settings (not training recipes); they are tested by each lab.
TRAINING_RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if "repro" not in p.relative_to(CONFIGS).parts)


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
