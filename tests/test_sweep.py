"""``innerworks sweep``: real (small) quick runs on the local and Ray backends, a killed worker, a stopped driver,
and bad sweep files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from innerworks.errors import ConfigError, InnerworksError
from innerworks.sweep import Backend, SweepSpec, load_sweep, plan_runs, run_sweep
from innerworks.sweep.worker import WORKER_FILE
from innerworks.train import train
from innerworks.utils.io import read_json

SMALL = {"data.n_train": 2000, "data.n_val": 200, "data.n_test": 200}
# Registers the sweep command on the real app when cli.py does not yet, then runs the real entry point.
CLI = ("from innerworks import cli\nfrom innerworks.sweep.cli import register\n"
       "if 'sweep' not in {c.name for c in cli.app.registered_commands}: register(cli.app)\ncli.main()")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=300)


def spec(grid: dict, **overrides: object) -> SweepSpec:
    return SweepSpec.model_validate({"base": "quick", "grid": grid, "overrides": {**SMALL, **overrides}})


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'innerworks[ray]'); Ray tests skipped")
    from innerworks.sweep.ray_backend import local_instance_options

    ray.init(**local_instance_options(num_cpus=2))
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_runs_as_local(tmp_path: Path, ray_instance: object) -> None:
    s = spec({"seed": [0, 1], "model.hidden_size": [16, 32]}, **{"train.steps": 20})
    local = run_sweep(s, tmp_path / "local", Backend.LOCAL, jobs=2, progress=False)
    on_ray = run_sweep(s, tmp_path / "ray", "ray", progress=False)
    assert local.ok and on_ray.ok, (local.runs, on_ray.runs)
    names = [r.name for r in local.runs]
    assert names == ["seed-0__hidden_size-16", "seed-0__hidden_size-32", "seed-1__hidden_size-16",
                     "seed-1__hidden_size-32"]
    for name in names:
        a, b = (read_json(tmp_path / d / "runs" / name / "metrics.json") for d in ("local", "ray"))
        assert a == b, name
        assert not (tmp_path / "ray" / "runs" / name / WORKER_FILE).exists()
    doc = read_json(tmp_path / "ray" / "sweep.json")
    assert doc["backend"] == "ray" and doc["finished"] and doc["counts"]["done"] == 4
    assert doc["seeds"] == [0, 1] and "git_commit" in doc["provenance"] and "versions" in doc["provenance"]
    row = doc["runs"][1]
    assert row["params"] == {"seed": 0, "model.hidden_size": 32} and row["status"] == "done"
    assert row["test"] == read_json(tmp_path / "ray" / row["run_dir"] / "metrics.json")["test"]["accuracy"]
    assert row["wall_time_s"] > 0 and row["metric"] == "accuracy"
    lines = (tmp_path / "ray" / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("name,seed,model.hidden_size,status,") and len(lines) == 5


def _kill_once_checkpointed(run_dir: Path, killed: list[int], stop: threading.Event) -> None:
    """Kill the worker training ``run_dir`` (its pid from worker.json) once it has written a checkpoint."""
    while not stop.is_set():
        if (run_dir / "checkpoint.safetensors").exists() and (run_dir / WORKER_FILE).exists():
            try:
                pid = read_json(run_dir / WORKER_FILE)["pid"]
            except (InnerworksError, KeyError):
                continue
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.005)


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_killed_worker_resumes_to_the_same_weights(tmp_path: Path, backend: str, request) -> None:
    if backend == "ray":
        request.getfixturevalue("ray_instance")
    s = spec({"seed": [0, 1]}, **{"train.steps": 200, "train.checkpoint_every": 20, "train.eval_every": 100})
    victim = "seed-1"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_once_checkpointed, args=(tmp_path / "sw" / "runs" / victim, killed, stop))
    killer.start()
    try:
        result = run_sweep(s, tmp_path / "sw", backend, jobs=2, max_retries=2, progress=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "the worker was not killed before its run finished"
    assert result.ok, result.runs
    rec = result.run(victim)
    assert rec.attempts == 2 and rec.resumed_from_step is not None and rec.resumed_from_step >= 20
    assert read_json(tmp_path / "sw" / "runs" / victim / "run.json")["resumed_from_step"] == rec.resumed_from_step
    recipe = next(r.recipe for r in plan_runs(s) if r.name == victim)
    train(recipe, tmp_path / "ref", progress=False)
    got, ref = tmp_path / "sw" / "runs" / victim, tmp_path / "ref"
    assert (got / "model.safetensors").read_bytes() == (ref / "model.safetensors").read_bytes()
    assert read_json(got / "metrics.json") == read_json(ref / "metrics.json")
    assert result.run("seed-0").attempts == 1


def test_resume_after_the_driver_was_stopped_retrains_nothing_finished(tmp_path: Path) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"base": "quick", "grid": {"seed": [0, 1, 2]},
                                     "overrides": {**SMALL, "train.steps": 150, "train.checkpoint_every": 25}}))
    out = tmp_path / "o"
    first = out / "runs" / "seed-0"
    driver = subprocess.Popen([sys.executable, "-c", CLI, "sweep", str(sweep), "--out", str(out), "--jobs", "1",
                               "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (first / "run.json").exists():
            assert driver.poll() is None and time.monotonic() < deadline, driver.stderr.read().decode()
            time.sleep(0.02)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait()
    assert not (out / "runs" / "seed-2" / "metrics.json").exists()
    stamps = {f: (first / f).stat().st_mtime_ns for f in ("model.safetensors", "metrics.json", "run.json")}
    with pytest.raises(InnerworksError, match="--resume"):
        run_sweep(sweep, out, progress=False)
    result = run_sweep(sweep, out, resume=True, jobs=1, progress=False)
    assert result.ok and result.run("seed-0").reused and not result.run("seed-2").reused
    assert {f: (first / f).stat().st_mtime_ns for f in stamps} == stamps
    assert [r["status"] for r in read_json(out / "sweep.json")["runs"]] == ["done"] * 3
    again = run_sweep(sweep, out, resume=True, progress=False)
    assert again.counts()["reused"] == 3 and again.wall_time_s < 1
    other = tmp_path / "other.yaml"
    other.write_text(sweep.read_text().replace("- 2", "- 3"))
    with pytest.raises(InnerworksError, match="different sweep"):
        run_sweep(other, out, resume=True, progress=False)


def test_sigterm_stops_the_workers_and_records_the_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"base": "quick", "grid": {"seed": [0, 1]},
                                     "overrides": {**SMALL, "train.steps": 5000}}))
    out = tmp_path / "o"
    driver = subprocess.Popen([sys.executable, "-c", CLI, "sweep", str(sweep), "--out", str(out), "--jobs", "2",
                               "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    markers = [out / "runs" / n / WORKER_FILE for n in ("seed-0", "seed-1")]
    try:
        deadline = time.monotonic() + 120
        while not all(m.exists() for m in markers):
            assert driver.poll() is None and time.monotonic() < deadline, driver.stderr.read()
            time.sleep(0.05)
        pids = [read_json(m)["pid"] for m in markers]
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=60) == 130
    finally:
        driver.kill()
        driver.wait()
    assert "Traceback" not in driver.stderr.read()  # typer turns Ctrl-C (here SIGTERM) into exit status 130
    doc = read_json(out / "sweep.json")
    assert [r["status"] for r in doc["runs"]] == ["pending", "pending"] and not doc["finished"]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_analysis_headlines_in_the_rows(tmp_path: Path) -> None:
    s = SweepSpec.model_validate({"base": "quick", "grid": {"seed": [0]},
                                  "overrides": {**SMALL, "train.steps": 60},
                                  "analyze": {"dynamics": {"n_docs": 30, "n_starts": 32, "n_linearize": 8,
                                                           "n_trajectories": 0, "figures": False,
                                                           "slow_max_iters": 100}}})
    result = run_sweep(s, tmp_path / "o", jobs=1, progress=False)
    assert result.ok, result.runs
    heads = result.run("seed-0").analysis
    assert heads is not None and heads["fixed_points"] >= 1
    assert (tmp_path / "o" / "analysis" / "seed-0" / "analysis.json").is_file()
    assert "fixed_points" in (tmp_path / "o" / "sweep.csv").read_text().splitlines()[0]
    again = run_sweep(s, tmp_path / "o", resume=True, progress=False)
    assert again.run("seed-0").reused and again.run("seed-0").analysis == heads


BAD = {
    "unknown_field": ("base: quick\ngrid: {seed: [0]}\nbogus: 1\n", "'bogus'"),
    "not_a_recipe_field": ("base: quick\ngrid:\n  model.hidden_sise: [8]\n", "grid.model.hidden_sise"),
    "empty_list": ("base: quick\ngrid:\n  seed: []\n", "grid.seed"),
    "bad_value": ("base: quick\ngrid:\n  model.hidden_size: [0]\n", "grid.model.hidden_size"),
    "bad_yaml": ("base: quick\ngrid:\n  seed: [0\n  x: 1\n", "bad_yaml.yaml:4"),
    "no_base": ("grid: {seed: [0]}\n", "'base'"),
    "bad_analyze": ("base: quick\ngrid: {seed: [0]}\nanalyze: {dynamics: {n_dox: 3}}\n", "analyze.dynamics.n_dox"),
    "bad_override": ("base: quick\ngrid: {seed: [0]}\noverrides: {train.stepz: 3}\n", "overrides.train.stepz"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sweep_files_name_the_field(tmp_path: Path, case: str) -> None:
    text, needle = BAD[case]
    p = tmp_path / f"{case}.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        plan_runs(load_sweep(p), p)
    assert needle in str(err.value) and str(p) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "o").exists()


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(BAD["not_a_recipe_field"][0])
    proc = run_cli("sweep", str(p), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "grid.model.hidden_sise" in proc.stderr
    assert not (tmp_path / "o").exists()
    file_out = tmp_path / "f"
    file_out.write_text("x")
    p.write_text("base: quick\ngrid: {seed: [0]}\n")
    proc = run_cli("sweep", str(p), "--out", str(file_out), "--backend", "local")
    assert proc.returncode == 2 and "not a folder" in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_option_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = spec({"seed": [0]})
    for kwargs, needle in (({"jobs": 0}, "--jobs"), ({"gpus_per_run": 0.5}, "--backend ray"),
                           ({"address": "auto"}, "--address"), ({"device": "tpu"}, "--device"),
                           ({"ensembles": True, "backend": "ray"}, "--ensembles")):
        with pytest.raises(InnerworksError, match=needle):
            run_sweep(s, tmp_path / "o", kwargs.pop("backend", Backend.LOCAL), progress=False, **kwargs)
    with pytest.raises(InnerworksError, match="--backend"):
        run_sweep(s, tmp_path / "o", "slurm", progress=False)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(InnerworksError, match=r"pip install 'innerworks\[ray\]'"):
        run_sweep(s, tmp_path / "o", Backend.RAY, progress=False)
    assert not (tmp_path / "o").exists()


def test_ensembles_train_the_stackable_runs_together_then_record_them(tmp_path: Path) -> None:
    s = spec({"seed": [0, 1, 2]}, **{"train.steps": 20, "model.hidden_size": 16})
    result = run_sweep(s, tmp_path / "o", Backend.LOCAL, jobs=1, ensembles=True, progress=False)
    assert result.ok and [r.status for r in result.runs] == ["done"] * 3
    members = [read_json(tmp_path / "o" / "runs" / r.name / "run.json").get("ensemble") for r in result.runs]
    assert all(m is not None and m["size"] == 3 for m in members), members
    alone = run_sweep(s, tmp_path / "alone", Backend.LOCAL, jobs=1, progress=False)
    for a, b in zip(result.runs, alone.runs, strict=True):
        assert a.test is not None and abs(a.test - b.test) <= 0.02, (a, b)   # equal up to float rounding
