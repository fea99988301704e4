"""CLI fuzz: random argument lists for every command must end with exit 0, 1 or 2, and never a traceback.

Hypothesis builds the argument lists from each command's real options (read from the typer app, so a new option is
fuzzed without touching this file) plus junk options, existing files and folders (a run, a report folder, empty,
non-UTF-8 and unicode-named files, a path under a file) as inputs and as ``--out``, unicode, negative and huge
numbers and specs that start with ``-``. Each list runs in-process through :func:`innerworks.cli.main`, the console
entry point; an exit code 2 must come with one line ``error: ...`` on stderr.

Stand-ins keep it fast: where a command would start real work (training, an analysis, a width sweep, a
reproduction), the library call is replaced by a stand-in that runs the same input validation as the real function
(device by name, ``_prepare_run_dir``, loading the run, the settings and every recipe, widths, spec and network)
and then raises :class:`WorkSkipped`, counted as exit 0. Every check in the command modules and in
:mod:`innerworks.utils` runs for real. ``INNERWORKS_FUZZ_EXAMPLES`` sets the examples per command (default 300);
``bench/fuzz_cli.py`` runs the same harness for 10,000+ examples and prints the statistics.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import io
import itertools
import os
import traceback
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from innerworks.cli import app, main
from innerworks.errors import InnerworksError

EXAMPLES = int(os.environ.get("INNERWORKS_FUZZ_EXAMPLES", "300"))
ROOT = ("<root>",)  # the target that fuzzes the top level and the command groups


class WorkSkipped(BaseException):  # noqa: N818 - a signal, not an error
    """Raised by a stand-in where the real function would start the heavy work; counted as exit 0."""


# --------------------------------------------------------------------------------------------------- command tree
@dataclass(frozen=True)
class Param:
    """One parameter of a command: ``opts`` (empty for an argument), ``kind`` and, for an enum, its ``choices``."""

    name: str
    opts: tuple[str, ...]
    kind: str  # flag, int, float, path, text, choice
    required: bool
    choices: tuple[str, ...] = ()


def _kind(p: Any) -> tuple[str, tuple[str, ...]]:
    ann = getattr(getattr(p, "type_descriptor", None), "annotation", str)
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if args:  # Optional[X], list[X]
        ann = args[0]
    if getattr(p, "is_flag", False) or ann is bool:
        return "flag", ()
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return "choice", tuple(str(m.value) for m in ann)
    return {int: "int", float: "float", Path: "path"}.get(ann, "text"), ()


@functools.cache
def command_tree() -> dict[tuple[str, ...], tuple[Param, ...]]:
    """Every leaf command of the app (``("wide", "measure")``) with its parameters."""
    def walk(cmd: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    tree = {}
    for path, cmd in walk(typer.main.get_command(app), ()):
        params = []
        for p in cmd.params:
            kind, choices = _kind(p)
            opts = () if p.param_type_name == "argument" else tuple(p.opts) + tuple(p.secondary_opts)
            params.append(Param(str(p.name), opts, kind, bool(p.required), choices))
        tree[path] = tuple(params)
    return tree


# ------------------------------------------------------------------------------------------------------- files
@dataclass
class Files:
    """The files and folders the fuzz draws paths from; ``fresh()`` is a new path under ``root`` each call."""

    root: Path
    inputs: tuple[str, ...]
    counter: Iterator[int] = itertools.count()

    def fresh(self) -> str:
        return str(self.root / "out" / f"o{next(self.counter)}")


TINY = {"name": "tiny", "task": "classification", "seed": 0,
        "data": {"source": "synthetic", "task": "categorical", "num_classes": 3, "length": 8, "min_length": 4,
                 "n_train": 64, "n_val": 16, "n_test": 16},
        "model": {"cell": "gru", "hidden_size": 4, "embed_dim": None},
        "train": {"steps": 1, "batch_size": 8, "eval_every": 1, "checkpoint_every": 1}}
TINY_S2S = {"name": "s2s", "task": "seq2seq", "seed": 0,
            "data": {"task": "one_to_one", "num_words": 3, "min_length": 3, "max_length": 4, "n_train": 32,
                     "n_val": 8, "n_test": 8},
            "model": {"arch": "aed", "hidden_size": 4, "teacher_forcing": True},
            "train": {"steps": 1, "batch_size": 8, "eval_every": 1, "checkpoint_every": 1}}


def make_files(root: Path) -> Files:
    """Train two tiny runs (a classifier and a seq2seq model), copy one with a NaN weight, and write the other
    inputs: a report folder, a recipe, empty, binary and unicode-named files, an empty folder."""
    import yaml
    from safetensors.torch import load_file, save_file

    from innerworks.train import parse_recipe, train
    from innerworks.utils.io import write_json

    root.mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    for name, raw in (("run", TINY), ("s2s", TINY_S2S)):
        train(parse_recipe(raw), root / name, progress=False)
    nan = root / "nanrun"
    nan.mkdir()
    for f in ("config.yaml", "metrics.json", "run.json"):
        (nan / f).write_bytes((root / "run" / f).read_bytes())
    weights = load_file(root / "run" / "model.safetensors")
    next(iter(weights.values())).view(-1)[0] = float("nan")
    save_file(weights, nan / "model.safetensors")
    write_json(root / "report" / "results.json", {"name": "demo", "claims": []})
    (root / "recipe.yaml").write_text(yaml.safe_dump(TINY), encoding="utf-8")
    (root / "empty.yaml").write_text("")
    (root / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81junk")
    (root / "emptydir").mkdir()
    (root / "ünïcødé ☃.yaml").write_text("name: [", encoding="utf-8")
    inputs = ("run", "s2s", "nanrun", "report", "recipe.yaml", "empty.yaml", "binary.yaml", "emptydir",
              "ünïcødé ☃.yaml", "missing", "recipe.yaml/under-a-file")
    return Files(root, tuple(str(root / i) for i in inputs))


# ------------------------------------------------------------------------------------------------- stand-ins
def _cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Memoise a validation on its arguments (and the files' modification times): the result, or the error."""
    memo: dict[Any, Any] = {}

    def wrapper(*args: Any) -> Any:
        stamp = tuple(os.stat(a).st_mtime_ns if isinstance(a, Path) and a.exists() else None for a in args)
        key = (args, stamp)
        if key not in memo:
            try:
                memo[key] = (True, fn(*args))
            except InnerworksError as exc:
                memo[key] = (False, exc)
        ok, value = memo[key]
        if not ok:
            raise value
        return value

    return wrapper


@_cached
def _load_run(run_dir: Path) -> Any:
    from innerworks.train.run import load_run

    return load_run(run_dir)


@_cached
def _lab_recipes(name: str, path: Path, quick: bool, seed: int) -> dict[str, Any]:
    from innerworks.repro.registry import LABS

    lab = next(e.load() for e in LABS if e.name == name)
    return lab.recipes(lab.load_settings(path, quick), seed, path)


def _train(recipe: Any, out_dir: Any, resume: bool = False, device: str | None = None, **_: Any) -> Any:
    from innerworks.train import loop
    from innerworks.train.config import recipe_to_yaml

    loop._device(device or recipe.train.device)
    loop._prepare_run_dir(Path(out_dir), recipe_to_yaml(recipe), resume)
    raise WorkSkipped


def _analyze_dynamics(run_dir: Any, out: Any, settings: Any = None, **_: Any) -> Any:
    run = _load_run(Path(run_dir))
    if run.recipe.task not in ("classification", "flipflop"):
        raise InnerworksError(f"analyze dynamics: task {run.recipe.task!r} is not supported")
    raise WorkSkipped


def _analyze_attention(run_dir: Any, out: Any, **_: Any) -> Any:
    run = _load_run(Path(run_dir))
    if run.recipe.task != "seq2seq":
        raise InnerworksError(f"{run_dir}: task is {run.recipe.task!r}; analyze attention needs a 'seq2seq' run")
    raise WorkSkipped


def _run_sweep(correlators: Any, widths: Any, *, activation: str = "relu", depth: int = 2, d_in: int = 4,
               parameterization: str = "ntk", bias: bool = False, **_: Any) -> Any:
    from innerworks.wide.networks import MLPConfig
    from innerworks.wide.spec import resolve
    from innerworks.wide.sweep import parse_widths

    ws = parse_widths(widths if isinstance(widths, str) else list(widths))
    MLPConfig(ws[0], depth, d_in, activation, parameterization, bias)
    for c in correlators:
        resolve(c)
    raise WorkSkipped


def _reproduce(lab: Any, options: Any, console: Any = None) -> Any:
    from innerworks.repro.base import check_options

    check_options(options)
    path = Path(options.config) if options.config is not None else lab.settings_path(options.quick)
    if not _lab_recipes(lab.name, path, options.quick, options.seed) and options.train_only:
        raise InnerworksError(f"repro {lab.name}: --train-only: this reproduction trains no runs")
    raise WorkSkipped


def _run_all(out: Any, quick: bool = True, device: str = "cpu", seed: int = 0, stages: Any = None,
             **_: Any) -> Any:
    from innerworks.repro.base import ReproOptions, check_options
    from innerworks.repro.registry import LABS

    names = [s.name for s in LABS]
    for name in stages or names:
        if name not in names:
            raise InnerworksError(f"unknown stage {name!r}; expected {', '.join(names)}")
    check_options(ReproOptions(out=Path(out), device=device))
    raise WorkSkipped


def _skip(*_: Any, **__: Any) -> Any:
    raise WorkSkipped


STANDINS: dict[tuple[str, ...], tuple[tuple[str, Callable[..., Any]], ...]] = {
    ("train",): (("innerworks.train.loop.train", _train),),
    ("analyze", "dynamics"): (("innerworks.dynamics.analyze.analyze_run", _analyze_dynamics),),
    ("analyze", "attention"): (("innerworks.attention.analyze.analyze_run", _analyze_attention),),
    ("wide", "measure"): (("innerworks.wide.sweep.run_sweep", _run_sweep),),
    ("repro", "all"): (("innerworks.repro.all.run_all", _run_all),),
    **{("repro", lab): (("innerworks.repro.base.reproduce", _reproduce),
                        ("innerworks.repro.base.train_only", _reproduce)) for lab in ("integration", "attention",
                                                                                     "wide")},
    ("sweep",): (("innerworks.sweep.runner.run_sweep", _skip),),  # its checks: tests/test_sweep.py
}
CHEAP = {("recipes",), ("report",), ("wide", "predict"), ("wide", "list")}  # run for real


def install_standins(mp: pytest.MonkeyPatch) -> None:
    """Patch every heavy call of :data:`STANDINS` whose command is mounted; cache the app's click command."""
    import importlib

    for path, patches in STANDINS.items():
        if path in command_tree():
            for target, fn in patches:
                module, attr = target.rsplit(".", 1)
                mp.setattr(importlib.import_module(module), attr, fn)
    real = typer.main.get_command
    built = real(app)
    mp.setattr(typer.main, "get_command", lambda t: built if t is app else real(t))


# -------------------------------------------------------------------------------------------------- strategies
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_EXTREMES = [0, -1, 1, 2, 3, 99, 100, 2**31, 2**32 - 1, 2**32, 2**63, 10**30, -(10**30)]
_INTS = st.one_of(st.integers(-3, 8), st.sampled_from(_EXTREMES), st.integers()).map(str)
_NOT_INTS = st.sampled_from(["abc", "1.5", "", "1e3", "0x10", "nan", "٣", " 7", "-", "--", "١٠٠"])
_JUNK_OPTIONS = ["--bogus", "-x", "--", "-", "--help", "-h", "--out=", "--quiet=1", "--seed=", "--é", "---",
                 "--Out", "-o"]
_WORDS = {
    "device": ["cpu", "cuda", "cuda:0", "cuda:99", "cudaa", "tpu", "CPU", "", "cuda:-1", "mps"],
    "activation": ["relu", "tanh", "erf", "gelu", "linear", "cubic", "quadratic", "poly:0,1", "poly:", "poly:nan",
                   "poly:1e308", "poly:a", "bogus"],
    "split": ["train", "val", "test", "dev", ""],
    "parameterization": ["ntk", "standard", "mup"],
    "method": ["auto", "structured", "autodiff", "generic", "fast"],
    "widths": ["4,8,16", "64,128,256,512", "4,8", "a,b", "0,1,2", "-4,8,16", "4,8,1000001", ",,,", "1_000,2,3"],
    "stage": ["integration", "attention", "wide", "bogus", ""],
    "spec": ["c3", "ntk", "o3", "f", "df(x1)[a] df(x2)[a]", "d2f(x1)[a,b] df(x2)[a] df(x3)[b] f(x4)", "f(x1)[a",
             "-zzz", "-c3", "zzz", "f(x1) f(x1) f(x1)", "d9f(x1)[a,a]"],
    "recipe": ["quick", "flipflop/gru16", "synthetic/categorical3_gru", "nope", "-quick", "../quick"],
    "address": ["auto", "ray://localhost:1", "bogus"],
}


# Values a careful user would give (most of them valid), so that half the examples get past the parsing and reach
# the deeper checks: the run, recipe or settings loaded, the output folder, the device.
_SANE = {
    "seed": ["0", "1", "4294967295"], "samples": ["2", "16"], "n_boot": ["100", "500"], "depth": ["1", "2"],
    "d_in": ["1", "4"], "probes": ["1", "2"], "n_docs": ["1", "50"], "n_starts": ["1", "8"], "jobs": ["1", "2"],
    "n_eval": ["1", "5"], "batch_size": ["1", "32"], "k": ["1", "5"], "widths": ["4,8,16"], "device": ["cpu"],
    "activation": ["relu", "tanh", "poly:0,1,0.5"], "split": ["train", "val", "test"], "method": ["auto"],
    "parameterization": ["ntk", "standard"], "stage": ["wide", "attention"], "spec": ["c3", "ntk", "o3"],
    "threads": ["1"], "max_retries": ["0", "1"], "gpus_per_run": ["0"],
}
_SANE_PATHS = {"run_dir": ("run", "s2s", "nanrun"), "directory": ("report",), "recipe": ("recipe.yaml",),
               "config": ("recipe.yaml", "empty.yaml")}


def _value(p: Param, files: Files, sane: bool) -> st.SearchStrategy[str]:
    """A value for ``p``: from its careful pool when ``sane`` (mostly), else anything of its kind and junk."""
    fresh = st.builds(files.fresh)
    if sane and p.name in ("out", "output"):
        return fresh
    if sane and p.name in _SANE_PATHS:
        return st.sampled_from([str(files.root / n) for n in _SANE_PATHS[p.name]])
    if sane and p.name in _SANE:
        return st.sampled_from(_SANE[p.name])
    if sane and p.kind == "choice":
        return st.sampled_from(p.choices)
    if p.kind == "int":
        return st.one_of(_INTS, _INTS, _INTS, _NOT_INTS)
    if p.kind == "float":
        return st.one_of(st.floats().map(str), _INTS, _NOT_INTS)
    if p.kind == "choice":
        return st.one_of(st.sampled_from(p.choices), _TEXT)
    if p.name in ("out", "output"):
        return st.one_of(fresh, fresh, st.sampled_from(files.inputs), _TEXT)
    words = _WORDS.get(p.name, [])
    options = [st.sampled_from(files.inputs)] if p.kind == "path" or p.name == "recipe" else []
    options += [st.sampled_from(words)] * 3 if words else []
    return st.one_of(*options, _TEXT, _INTS)


@st.composite
def argv_for(draw: st.DrawFn, path: tuple[str, ...], files: Files) -> list[str]:
    """An argument list for the command ``path``: its arguments (usually), some of its options with values
    (required ones usually), sometimes junk options, in command-line order or shuffled. Half the lists are careful
    (values mostly from the careful pools, no junk), half wild."""
    if path == ROOT:
        words = sorted({w for p in command_tree() for w in p}) + _JUNK_OPTIONS
        return draw(st.lists(st.one_of(st.sampled_from(words), _TEXT), max_size=4))
    params = command_tree()[path]
    sane = draw(st.booleans())

    def value(p: Param) -> str:
        return draw(_value(p, files, sane and draw(st.integers(0, 9)) > 0))

    tokens = [value(p) for p in params if not p.opts and (sane or draw(st.integers(0, 9)) < 9)]
    options = [p for p in params if p.opts]
    chosen = [p for p in options if p.required and (sane or draw(st.integers(0, 9)) < 8)]
    chosen += draw(st.lists(st.sampled_from(options), max_size=3 if sane else 5)) if options else []
    for p in chosen:
        opt = draw(st.sampled_from(p.opts))
        if p.kind == "flag":
            tokens.append(opt)
        elif opt.startswith("--") and draw(st.integers(0, 9)) == 0:
            tokens.append(f"{opt}={value(p)}")
        else:
            tokens += [opt, value(p)]
    if not sane and draw(st.integers(0, 4)) == 0:
        tokens += draw(st.lists(st.sampled_from(_JUNK_OPTIONS), min_size=1, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        tokens = draw(st.permutations(tokens))
    return [*path, *tokens]


# ------------------------------------------------------------------------------------------------------ harness
@dataclass
class Outcome:
    """How one command line ended: exit code, stdout, stderr, and the traceback of an uncaught exception."""

    code: int
    stdout: str
    stderr: str
    traceback: str | None = None


def invoke(argv: list[str]) -> Outcome:
    """Run ``innerworks ARGV`` in this process through :func:`innerworks.cli.main`, as the console script does."""
    out, err = io.StringIO(), io.StringIO()
    code, tb = 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except WorkSkipped:
            code = 0
        except BaseException:  # noqa: BLE001 - the console script would print this traceback
            code, tb = 1, traceback.format_exc()
    return Outcome(code, out.getvalue(), err.getvalue(), tb)


def problems(outcome: Outcome) -> list[str]:
    """What is wrong with an outcome: an uncaught exception, a traceback on stderr, an exit code other than 0, 1
    or 2, or an exit code 2 without exactly one ``error: ...`` line."""
    found = []
    if outcome.traceback is not None:
        found.append(f"uncaught exception:\n{outcome.traceback}")
    if "Traceback" in outcome.stderr:
        found.append(f"traceback on stderr:\n{outcome.stderr}")
    if outcome.code not in (0, 1, 2):
        found.append(f"exit code {outcome.code}")
    lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
    if outcome.code == 2 and lines and (len(lines) != 1 or not lines[0].startswith("error: ")):
        found.append(f"exit 2 without one 'error:' line:\n{outcome.stderr}")
    return found


def fuzz_settings(examples: int) -> settings:
    """Reproducible hypothesis settings: ``examples`` per command, no deadline, fixed seed, no database."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def targets() -> list[tuple[str, ...]]:
    """Every leaf command of the app, and the top level."""
    return [*sorted(command_tree()), ROOT]


# -------------------------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    root = tmp_path_factory.mktemp("cli_fuzz")
    made = make_files(root)
    with pytest.MonkeyPatch.context() as mp:
        install_standins(mp)
        mp.chdir(root / "out")
        yield made


def test_every_command_is_fuzzed_cheaply() -> None:
    """A new command needs a stand-in for its heavy call (or a place in CHEAP) before it can be fuzzed here."""
    assert set(command_tree()) <= set(STANDINS) | CHEAP, set(command_tree()) - set(STANDINS) - CHEAP


@pytest.mark.parametrize("path", targets(), ids=" ".join)
def test_cli_fuzz(path: tuple[str, ...], files: Files) -> None:
    @fuzz_settings(EXAMPLES)
    @given(argv=argv_for(path, files))
    def run(argv: list[str]) -> None:
        found = problems(invoke(argv))
        assert not found, f"innerworks {argv}:\n" + "\n".join(found)

    run()
