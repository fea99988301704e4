"""One interface for every reproduction, and the shared runner behind ``innerworks repro <lab>``.

A lab's reproduction is a :class:`Reproduction`: its settings model (YAML shipped in ``innerworks/repro/settings``),
the runs it trains (ordinary recipes), how it analyses them and checks its claims, its thresholds table and the
source of each claim. :func:`reproduce` does everything the labs share: checks the options before any work, loads
and validates the settings, trains the runs (side by side with ``jobs``, or only that with ``train_only``), calls
the lab, stamps each claim with its source, and writes ``results.json`` and ``summary.md``.

>>> ReproOptions(out=Path("x"), quick=True).device
'cpu'
"""

from __future__ import annotations

import fnmatch
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from rich.console import Console

from innerworks.errors import InnerworksError
from innerworks.repro.claims import Claim, ReproResult, Source, Thresholds, claims_markdown, write_results
from innerworks.train.config import Recipe
from innerworks.train.runspec import RunSpec, build_recipe, load_settings
from innerworks.utils.device import resolve_device
from innerworks.utils.io import check_output_dir
from innerworks.utils.options import check_int


def settings_dir() -> Path:
    """The folder of the built-in reproduction settings (inside the installed package).

    >>> (settings_dir() / "wide_quick.yaml").is_file()
    True
    """
    return Path(str(files("innerworks.repro").joinpath("settings")))


@dataclass
class ReproOptions:
    """The options every ``repro`` command shares (validated by :func:`reproduce` before any work)."""

    out: Path
    quick: bool = False
    device: str = "cpu"
    seed: int = 0
    config: Path | None = None
    jobs: int = 1
    train_only: bool = False
    progress: bool = True
    ensembles: bool = False


@dataclass
class Context:
    """What a lab's :meth:`Reproduction.reproduce` gets besides its settings."""

    name: str
    options: ReproOptions
    settings_file: Path
    recipes: dict[str, Recipe]
    console: Console
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        """The output folder."""
        return self.options.out

    def trained_runs(self) -> Iterator[tuple[str, Recipe, Any]]:
        """Train (or reuse) each run in order and yield ``(name, recipe, TrainResult)``; the time spent training
        and then in the caller's analysis is filled into ``timings[name]`` (``train_wall_s``, ``analysis_wall_s``)
        when the caller asks for the next run; take that dict with ``timings.setdefault(name, {})``."""
        from innerworks.train import train
        from innerworks.train.run import training_timing

        o = self.options
        n = len(self.recipes)
        for i, (name, recipe) in enumerate(self.recipes.items(), 1):
            self.console.print(f"[bold]{self.name}[/] [{i}/{n}] {name}")
            t1 = time.perf_counter()
            trained = train(recipe, o.out / "runs" / name, resume=True, device=o.device, progress=o.progress)
            t2 = time.perf_counter()
            yield name, recipe, trained
            self.timings.setdefault(name, {}).update({**training_timing(trained.run_dir, t2 - t1, o.device),
                                                      "analysis_wall_s": round(time.perf_counter() - t2, 2)})


@dataclass
class LabOutcome:
    """What a lab's :meth:`Reproduction.reproduce` returns.

    Attributes:
        claims: the checked claims (sources are stamped afterwards from the lab's table).
        extra: further results for ``results.json`` (per-run values, tables).
        figures: the figures' relative paths (``figures/NAME.png``).
        notes: Markdown appended to ``summary.md`` after the claims table.
    """

    claims: list[Claim]
    extra: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    notes: str = ""


class Reproduction(ABC):
    """A lab's reproduction. Subclasses set the class attributes and implement :meth:`reproduce`.

    Attributes:
        name: the command name (``repro <name>``) and the settings files' prefix.
        title: what it reproduces, for help texts.
        Settings: the pydantic model of its settings file.
        thresholds: every number a claim rule uses, with a reason each.
        sources: claim id (or ``fnmatch`` pattern) -> (source, reference); every claim must match one.
        tasks: recipe tasks its runs may use (empty: it trains nothing).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    Settings: ClassVar[type[BaseModel]]
    thresholds: ClassVar[Thresholds] = Thresholds()
    sources: ClassVar[dict[str, tuple[Source, str]]] = {}
    tasks: ClassVar[tuple[str, ...]] = ()

    def settings_path(self, quick: bool) -> Path:
        """The built-in settings file: ``<name>_quick.yaml`` or ``<name>_full.yaml``."""
        return settings_dir() / f"{self.name}_{'quick' if quick else 'full'}.yaml"

    def load_settings(self, path: str | Path | None = None, quick: bool = True) -> Any:
        """Read and validate a settings file (default: the built-in one); every run's recipe is validated too."""
        p = Path(path) if path is not None else self.settings_path(quick)
        settings = load_settings(p, self.Settings)
        self.check_settings(settings, p)
        self.recipes(settings, 0, p)
        return settings

    def check_settings(self, settings: Any, path: Path) -> None:  # noqa: B027 - optional hook, no-op by default
        """Checks the pydantic model cannot express; raise :class:`~innerworks.errors.ConfigError` naming ``path``."""

    def run_specs(self, settings: Any) -> dict[str, RunSpec]:
        """The runs to train (default: the settings' ``runs`` mapping, or none)."""
        return dict(getattr(settings, "runs", {}) or {})

    def recipes(self, settings: Any, seed: int, path: Path) -> dict[str, Recipe]:
        """Every run's validated recipe, in training order (relative recipe paths resolve against ``path``'s
        folder first)."""
        base = path.resolve().parent
        return {name: build_recipe(spec, name, seed, base=base, tasks=self.tasks, lab=f"repro {self.name}")
                for name, spec in self.run_specs(settings).items()}

    @abstractmethod
    def reproduce(self, settings: Any, ctx: Context) -> LabOutcome:
        """Analyse (training the runs through ``ctx.trained_runs()``) and check the claims."""

    def attribute(self, claims: list[Claim]) -> list[Claim]:
        """Stamp each claim with its source and reference from :attr:`sources` (exact id first, then patterns)."""
        for c in claims:
            hit = self.sources.get(c.id) or next(
                (v for k, v in self.sources.items() if fnmatch.fnmatchcase(c.id, k)), None)
            if hit is None:
                raise RuntimeError(f"repro {self.name}: claim {c.id!r} has no entry in the sources table")
            c.source, c.reference = Source(hit[0]), hit[1]
        return claims


def check_options(options: ReproOptions) -> None:
    """Validate the shared options before any work: the device by name, ``jobs``, and that ``out`` can be a folder.

    >>> check_options(ReproOptions(out=Path("x"), jobs=0))  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: --jobs 0: expected a whole number >= 1
    """
    check_int(options.jobs, "--jobs", lo=1)
    resolve_device(options.device)
    check_output_dir(options.out, "--out")


def train_only(lab: Reproduction, options: ReproOptions) -> dict[str, dict[str, Any]]:
    """Train every run of the lab's settings into ``out/runs`` (``jobs`` at once) and stop; return each run's record
    (``status``, ``wall_time_s``, ``test`` or ``error``)."""
    from innerworks.train.parallel import train_many

    check_options(options)
    path = Path(options.config) if options.config is not None else lab.settings_path(options.quick)
    recipes = lab.recipes(lab.load_settings(path, options.quick), options.seed, path)
    if not recipes:
        raise InnerworksError(f"repro {lab.name}: --train-only: this reproduction trains no runs")
    return train_many(recipes, options.out / "runs", device=options.device, jobs=options.jobs,
                      progress=options.progress, ensembles=options.ensembles)


def reproduce(lab: Reproduction, options: ReproOptions,
              console: Console | None = None) -> ReproResult:
    """Run a reproduction end to end and write ``results.json`` and ``summary.md`` into ``options.out``.

    Finished runs already in ``out/runs`` with the same recipe are reused; ``jobs > 1`` trains the runs side by
    side first (:func:`innerworks.train.parallel.train_many`), and ``ensembles`` stacks runs that share an
    architecture into batched ensembles there (faster on a CPU; members match standalone runs up to float rounding,
    so numbers then depend on how runs were grouped, which ``jobs`` decides).
    """
    t0 = time.perf_counter()
    check_options(options)
    path = Path(options.config) if options.config is not None else lab.settings_path(options.quick)
    settings = lab.load_settings(path, options.quick)
    recipes = lab.recipes(settings, options.seed, path)
    options.out.mkdir(parents=True, exist_ok=True)
    console = console or Console(stderr=True, quiet=not options.progress)
    if (options.jobs != 1 or options.ensembles) and recipes:
        from innerworks.train.parallel import train_many

        train_many(recipes, options.out / "runs", device=options.device, jobs=options.jobs,
                   progress=options.progress, ensembles=options.ensembles)
    ctx = Context(lab.name, options, path, recipes, console)
    outcome = lab.reproduce(settings, ctx)
    config = {"quick": options.quick, "device": options.device, "seed": options.seed,
              "settings": settings.model_dump(mode="json"), "settings_file": str(path)}
    extra = {"config": config, "thresholds": lab.thresholds.to_dict(), **outcome.extra}
    name = str(getattr(settings, "name", None) or lab.name)  # a settings file may name its variant
    result = ReproResult(name, lab.attribute(outcome.claims), extra=extra, figures=outcome.figures)
    result.wall_time_s = round(time.perf_counter() - t0, 2)
    summary = claims_markdown(result) + (f"\n{outcome.notes.rstrip()}\n" if outcome.notes else "")
    write_results(options.out, result, summary)
    return result


def missing_claim(cid: str, statement: str, expected: str, why: str) -> Claim:
    """A claim that could not be evaluated (``passed: None``), with the reason in ``details.explanation``.

    >>> missing_claim("a", "s", "e", "no run").passed is None
    True
    """
    return Claim(cid, statement, expected, None, None, details={"explanation": f"not evaluated: {why}"})


