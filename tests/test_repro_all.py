"""`repro all` orchestration: a failing stage does not stop the others; exit status follows the claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from innerworks.repro import Stage, run_all

FAKE = (Stage("good", "fake_stages", "good"), Stage("failing", "fake_stages", "failing"),
        Stage("broken", "fake_stages", "broken"))


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
