"""`repro all` orchestration: a failing stage does not stop the others; exit status follows the claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from innerworks.repro.all import run_all
from innerworks.repro.base import ReproOptions, reproduce
from innerworks.repro.registry import LabEntry

FAKE = (LabEntry("good", "fake_stages:Good", "g"), LabEntry("failing", "fake_stages:Failing", "f"),
        LabEntry("broken", "fake_stages:Broken", "b"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_failures_are_isolated_and_reported(tmp_path: Path, jobs: int) -> None:
    result = run_all(tmp_path, seed=0, jobs=jobs, progress=False, registry=FAKE)
    status = {s["name"]: s["status"] for s in result.stages}
    assert status == {"good": "ok", "failing": "ok", "broken": "failed"}
    assert not result.all_passed
    repro = json.loads((tmp_path / "repro.json").read_text())
    assert [s["name"] for s in repro["stages"]] == ["good", "failing", "broken"]
    assert "stage exploded" in repro["stages"][2]["error"]
    assert (tmp_path / "broken" / "error.txt").read_text().count("RuntimeError") >= 1
    html = (tmp_path / "report.html").read_text()
    assert "g1" in html and "f1" in html and "stage exploded" in html


def test_all_passed_only_when_every_claim_passes(tmp_path: Path) -> None:
    assert run_all(tmp_path / "a", seed=0, jobs=1, progress=False, registry=FAKE, stages=["good"]).all_passed
    assert not run_all(tmp_path / "b", seed=0, jobs=1, progress=False, registry=FAKE,
                       stages=["good", "failing"]).all_passed
    assert run_all(tmp_path / "c", seed=1, jobs=1, progress=False, registry=FAKE,
                   stages=["good", "failing"]).all_passed


def test_repro_json_counts_claims_per_source(tmp_path: Path) -> None:
    run_all(tmp_path, seed=0, jobs=1, progress=False, registry=FAKE, stages=["good", "failing"])
    counts = json.loads((tmp_path / "repro.json").read_text())["counts"]
    assert counts == {"paper": {"passed": 1, "total": 1}, "extension": {"passed": 0, "total": 1}}
    results = json.loads((tmp_path / "good" / "results.json").read_text())
    assert results["claims"][0]["source"] == "paper" and results["claims"][0]["reference"] == "arithmetic"


def test_every_claim_needs_a_source(tmp_path: Path) -> None:
    from fake_stages import Unsourced

    with pytest.raises(RuntimeError, match="claim 'x1' has no entry in the sources table"):
        reproduce(Unsourced(), ReproOptions(out=tmp_path, progress=False))
    assert not (tmp_path / "results.json").exists()
