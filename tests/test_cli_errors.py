"""Bad input: one-line errors naming the file, line or field; exit code 2; no traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
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


# ------------------------------------------------------------------------------------------------------------------
# The command line itself: usage errors, options checked before any work, paths, non-finite weights. These run in
# this process through innerworks.cli.main (the console entry point), so the library calls can be watched.


def cli(*args: str) -> tuple[int, str, str]:
    """``innerworks ARGS`` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from innerworks.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def assert_error(result: tuple[int, str, str], *needles: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, exactly one line ``error: ...`` on stderr containing every needle."""
    rc, _, err = result
    assert rc == code, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def never(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``never("module.attr")``: replace a library call by one that fails the test if it is reached."""
    import importlib

    def forbid(target: str) -> None:
        module, attr = target.rsplit(".", 1)

        def called(*a: object, **k: object) -> None:
            raise AssertionError(f"{target} was called: the work started before the options were checked")

        monkeypatch.setattr(importlib.import_module(module), attr, called)

    return forbid


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from innerworks.train import train

    raw = quick_raw()
    raw["data"].update(n_train=64, n_val=16, n_test=16, length=8, min_length=4)
    raw["model"]["hidden_size"] = 4
    raw["train"].update(steps=1, eval_every=1, checkpoint_every=1, batch_size=8)
    out = tmp_path_factory.mktemp("tiny") / "run"
    train(parse_recipe(raw), out, progress=False)
    return out


@pytest.mark.parametrize(("args", "needles"), [
    (["wide", "measure", "c3", "--bogus"], ["No such option: --bogus", "innerworks wide measure --help"]),
    (["wide", "measure", "c3", "--samples", "abc"], ["'--samples'", "integer"]),
    (["wide", "measure"], ["Missing argument", "spec"]),
    (["wide", "predict", "-zzz"], ["No such option: -z", "goes after --"]),
    (["train", "quick"], ["Missing option '--out'", "innerworks train --help"]),
    (["analyze", "dynamics"], ["Missing argument", "innerworks analyze dynamics --help"]),
    (["analyze", "attention", "x", "--out", "y", "--k"], ["--k", "requires an argument"]),
    (["repro", "wide", "--out", "o", "--jobs", "many"], ["'--jobs'"]),
    (["repro", "all", "--bogus"], ["No such option: --bogus"]),
    (["report"], ["Missing argument"]),
    (["recipes", "extra"], ["unexpected extra argument", "extra"]),
    (["bogus"], ["No such command 'bogus'", "innerworks --help"]),
])
def test_usage_errors_are_one_line(args: list[str], needles: list[str]) -> None:
    assert_error(cli(*args), *needles)


def test_usage_error_from_the_console_script() -> None:
    proc = run_cli("wide", "measure", "c3", "--bogus")
    assert_one_line_error(proc, "error: No such option: --bogus", "(see innerworks wide measure --help)")


def test_no_arguments_show_the_help() -> None:
    rc, out, err = cli()
    assert rc == 2 and "Traceback" not in out + err
    assert "Commands" in out + err


def test_out_is_a_file_train(tmp_path: Path, never: Callable[[str], None]) -> None:
    never("innerworks.train.loop.train")
    f = tmp_path / "afile"
    f.write_text("keep")
    assert_error(cli("train", "quick", "--out", str(f)), "--out", "afile", "not a folder")
    assert f.read_text() == "keep"


def test_out_is_a_file_analyses(tmp_path: Path, tiny_run: Path, never: Callable[[str], None]) -> None:
    never("innerworks.dynamics.analyze.analyze_run")
    never("innerworks.attention.analyze.analyze_run")
    never("innerworks.wide.sweep.run_sweep")
    f = tmp_path / "afile"
    f.write_text("keep")
    assert_error(cli("analyze", "dynamics", str(tiny_run), "--out", str(f)), "--out", "afile")
    assert_error(cli("analyze", "attention", str(tiny_run), "--out", str(f)), "--out", "afile")
    assert_error(cli("wide", "measure", "c3", "--out", str(f)), "--out", "afile")
    assert_error(cli("wide", "measure", "c3", "--out", str(f / "sub")), "--out", "afile is not a folder")
    assert f.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_report_output_is_a_folder(tmp_path: Path, never: Callable[[str], None]) -> None:
    from innerworks.utils.io import write_json

    never("innerworks.report.html.write_report")
    write_json(tmp_path / "results.json", {"name": "demo", "claims": []})
    (tmp_path / "sub").mkdir()
    assert_error(cli("report", str(tmp_path), "--output", str(tmp_path / "sub")), "--output", "is a folder")
    (tmp_path / "report.html").mkdir()  # the default output is in the way
    assert_error(cli("report", str(tmp_path)), "report.html", "is a folder")


@pytest.mark.parametrize(("args", "needles"), [
    (["--n-starts", "0"], ["--n-starts 0", "from 1"]),
    (["--n-docs", "-1"], ["--n-docs -1"]),
    (["--n-docs", str(10**30)], ["--n-docs"]),
    (["--seed", "-1"], ["--seed -1", "0 to 4294967295"]),
])
def test_analyze_dynamics_options(tmp_path: Path, tiny_run: Path, never: Callable[[str], None], args: list[str],
                                  needles: list[str]) -> None:
    never("innerworks.dynamics.analyze.analyze_run")
    assert_error(cli("analyze", "dynamics", str(tiny_run), "--out", str(tmp_path / "o"), *args), *needles)


def test_analysis_settings_errors_name_the_option() -> None:
    from innerworks.dynamics.analyze import AnalysisSettings
    from innerworks.errors import InnerworksError
    from innerworks.utils.options import settings_from_options

    with pytest.raises(InnerworksError, match=r"^--n-starts 0: "):
        settings_from_options(AnalysisSettings, {"n_docs": 5, "n_starts": 0})
    with pytest.raises(InnerworksError, match=r"^--no-figures "):
        settings_from_options(AnalysisSettings, {"figures": "maybe"}, {"figures": "--no-figures"})


@pytest.mark.parametrize(("args", "needles"), [
    (["--split", "dev"], ["--split 'dev'", "train, val, test"]),
    (["--n-eval", "0"], ["--n-eval 0"]),
    (["--batch-size", "-5"], ["--batch-size -5"]),
    (["--k", "0"], ["--k 0"]),
])
def test_analyze_attention_options(tmp_path: Path, tiny_run: Path, never: Callable[[str], None], args: list[str],
                                   needles: list[str]) -> None:
    never("innerworks.attention.analyze.analyze_run")
    assert_error(cli("analyze", "attention", str(tiny_run), "--out", str(tmp_path / "o"), *args), *needles)


@pytest.mark.parametrize(("args", "needles"), [
    (["--device", "tpu"], ["--device 'tpu'", "expected cpu, cuda or cuda:N"]),
    (["--device", "cudaa"], ["--device 'cudaa'", "expected cpu, cuda or cuda:N"]),
    (["--n-boot", "-1"], ["--n-boot -1", "from 100"]),
    (["--n-boot", "0"], ["--n-boot 0"]),
    (["--samples", "1"], ["--samples 1", "from 2"]),
    (["--samples", str(10**20)], ["--samples"]),
    (["--widths", "4,8"], ["--widths", "at least 3"]),
    (["--widths", "a,b,c"], ["--widths 'a,b,c'"]),
    (["--widths", "4,8,-16"], ["--widths", "positive"]),
    (["--widths", "4,8,2000000"], ["--widths", "at most"]),
    (["--depth", "0"], ["--depth 0"]),
    (["--probes", "0"], ["--probes 0"]),
    (["--d-in", str(10**14)], ["--d-in"]),
    (["--seed", str(2**32)], ["--seed 4294967296"]),
    (["--method", "fast"], ["--method 'fast'"]),
    (["--param", "mup"], ["--param 'mup'"]),
    (["--activation", "bogus"], ["activation 'bogus'"]),
    (["--activation", "poly:1e308"], ["activation 'poly:1e308'", "float32"]),
])
def test_wide_measure_options(never: Callable[[str], None], args: list[str], needles: list[str]) -> None:
    never("innerworks.wide.sweep.run_sweep")
    assert_error(cli("wide", "measure", "c3", *args), *needles)


def test_wide_predict_depth() -> None:
    assert_error(cli("wide", "predict", "c3", "--activation", "relu", "--depth", str(10**20)), "--depth")


@pytest.mark.parametrize(("args", "needles"), [
    (["--device", "cudaa"], ["--device 'cudaa'", "expected cpu, cuda or cuda:N"]),
    (["--seed", "-1"], ["--seed -1"]),
    (["--seed", str(10**23)], ["--seed"]),
])
def test_train_options_checked_first(tmp_path: Path, never: Callable[[str], None], args: list[str],
                                     needles: list[str]) -> None:
    never("innerworks.train.loop.train")
    assert_error(cli("train", "quick", "--out", str(tmp_path / "o"), *args), *needles)
    assert not (tmp_path / "o").exists()


def test_recipe_seed_out_of_range(tmp_path: Path) -> None:
    raw = quick_raw()
    raw["seed"] = -1
    p = tmp_path / "neg.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert_error(cli("train", str(p), "--out", str(tmp_path / "o")), "neg.yaml", "seed")


def test_non_finite_weights_name_the_file(tmp_path: Path, tiny_run: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    run = tmp_path / "nanrun"
    shutil.copytree(tiny_run, run)
    weights = load_file(run / "model.safetensors")
    name = sorted(weights)[-1]
    weights[name].view(-1)[0] = float("inf")
    save_file(weights, run / "model.safetensors")
    line = assert_error(cli("analyze", "dynamics", str(run), "--out", str(tmp_path / "o")))
    assert line == f"error: {run}/model.safetensors: non-finite weights in {name}"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00junk", b""])
def test_bad_settings_files(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "s.yaml"
    p.write_bytes(content)
    assert_error(cli("repro", "wide", "--out", str(tmp_path / "o"), "--config", str(p)), "s.yaml")
    assert_error(cli("repro", "wide", "--out", str(tmp_path / "o"), "--config", str(tmp_path)), str(tmp_path))


@pytest.mark.parametrize(("args", "needles"), [
    (["repro", "wide", "--out", "{f}"], ["--out", "not a folder"]),
    (["repro", "wide", "--out", "{d}/o", "--seed", "-1"], ["--seed -1"]),
    (["repro", "wide", "--out", "{d}/o", "--device", "cudaa"], ["--device 'cudaa'"]),
    (["repro", "all", "--out", "{f}"], ["--out", "not a folder"]),
    (["repro", "all", "--out", "{d}/o", "--jobs", "0"], ["--jobs 0"]),
    (["repro", "all", "--out", "{d}/o", "--stage", "nope"], ["unknown stage 'nope'"]),
    (["report", "{d}/missing"], ["missing"]),
    (["report", "{f}"], ["afile"]),
    (["train", "{d}", "--out", "{d}/o"], ["{d}: is a folder, expected a recipe YAML file"]),
    (["train", "{d}/ünï ☃.yaml", "--out", "{d}/o"], ["ünï ☃.yaml"]),
    (["wide", "predict", "é"], ["spec 'é'"]),
])
def test_other_bad_input(tmp_path: Path, args: list[str], needles: list[str]) -> None:
    f = tmp_path / "afile"
    f.write_text("x")
    assert_error(cli(*(a.format(d=tmp_path, f=f) for a in args)), *(n.format(d=tmp_path) for n in needles))


def test_line_breaks_stay_on_one_line(tmp_path: Path) -> None:
    line = assert_error(cli("report", str(tmp_path / "a\nb\u2028c")))
    assert "a\\nb\\u2028c" in line


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: 8 TB")])
def test_out_of_memory_is_one_line(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def boom(*a: object, **k: object) -> None:
        raise exc

    monkeypatch.setattr("innerworks.wide.sweep.run_sweep", boom)
    assert_error(cli("wide", "measure", "c3", "--quiet"), "out of memory", code=1)


def test_unwritable_path_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*a: object, **k: object) -> None:
        raise PermissionError(13, "Permission denied", "/root/x.json")

    monkeypatch.setattr("innerworks.wide.sweep.run_sweep", denied)
    assert_error(cli("wide", "measure", "c3", "--quiet"), "/root/x.json: Permission denied")
