"""Bad input: one-line errors naming the file, line or field; exit code 2; no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from innerworks.errors import ConfigError
from innerworks.train import parse_recipe
from innerworks.train.config import load_recipe, recipes_dir

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "innerworks.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def quick_raw() -> dict:
    return yaml.safe_load((recipes_dir() / "quick.yaml").read_text())


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_field(tmp_path: Path) -> None:
    raw = quick_raw()
    raw["model"]["hiden_size"] = 3
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert_one_line_error(run_cli("train", str(p), "--out", str(tmp_path / "o")), "bad.yaml", "model.hiden_size")


def test_wrong_type(tmp_path: Path) -> None:
    raw = quick_raw()
    raw["train"]["steps"] = "many"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert_one_line_error(run_cli("train", str(p), "--out", str(tmp_path / "o")), "train.steps")


def test_missing_recipe_file(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")), "nope.yaml")


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\ndata: [1, 2\nmodel: {}\n")
    assert_one_line_error(run_cli("train", str(p), "--out", str(tmp_path / "o")), "broken.yaml:")


def _csv_recipe(tmp_path: Path, csv_text: str, **data) -> Path:
    csv = tmp_path / "docs.csv"
    csv.write_text(csv_text)
    raw = {
        "name": "csv", "data": {"source": "natural", "corpus": "csv", "path": str(csv), "text_column": "text",
                                "label_column": "label", **data},
        "model": {"cell": "gru", "hidden_size": 8, "embed_dim": 8}, "train": {"steps": 2},
    }
    p = tmp_path / "csv.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_malformed_csv_row_names_file_and_line(tmp_path: Path) -> None:
    rows = "text,label\n" + "".join(f"good movie {i},1\n" for i in range(20)) + "a row with no label\n"
    p = _csv_recipe(tmp_path, rows)
    assert_one_line_error(run_cli("train", str(p), "--out", str(tmp_path / "o")), "docs.csv:22")


def test_empty_dataset(tmp_path: Path) -> None:
    p = _csv_recipe(tmp_path, "text,label\n")
    assert_one_line_error(run_cli("train", str(p), "--out", str(tmp_path / "o")), "docs.csv")


def test_label_outside_class_set(tmp_path: Path) -> None:
    rows = "text,label\n" + "".join(f"ok {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20)) + "meh,neutral\n"
    p = _csv_recipe(tmp_path, rows, label_map={"neg": 0, "pos": 1})
    assert_one_line_error(run_cli("train", str(p), "--out", str(tmp_path / "o")), "docs.csv:22", "neutral")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), kids, max_size=3)),
                       max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=st.sampled_from(["data", "model", "train", None]), key=st.text(max_size=10), value=_values)
def test_recipe_parser_fuzz(section: str | None, key: str, value: object) -> None:
    raw = quick_raw()
    if section is None:
        raw[key] = value
    elif isinstance(raw.get(section), dict):
        raw[section][key] = value
    try:
        parse_recipe(raw)
    except ConfigError as exc:
        assert str(exc).startswith("recipe: ")


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_recipe_file_fuzz(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    p = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_recipe(p)
    except ConfigError as exc:
        assert str(p) in str(exc)
