"""``innerworks repro attention``: train the attention lab's models, decompose their attention, check each claim.

Settings come from a YAML file (``attention_quick.yaml`` or ``attention_full.yaml`` in ``innerworks/repro/settings``;
``--config`` picks another): which runs to train (each a ``task: seq2seq`` recipe such as ``attention/escan_aed`` plus
overrides) and how
many test rows to analyse. Every run is trained with the shared :func:`innerworks.train.train` into
``out/runs/<name>/`` (an existing finished run with the same recipe is reused), analysed with
:func:`innerworks.attention.analyze.analyze_model` (``out/runs/<name>/analysis.json``, figures in
``out/figures/``), and the claims below are checked. ``results.json`` (the shared claims format), ``summary.md`` and
the figures are written into ``out``.

Run names the claims read: ``one_to_one_{ved,aed,ao,transformer}``, ``escan_{aed,ao,transformer}``,
``sort_<arch>``, ``translation_<arch>``. A claim whose runs are not in the configuration is reported with
``passed: null``.

The claims, their rules, thresholds (:data:`THRESHOLDS`) and sources (:data:`SOURCES`) live in
:mod:`innerworks.repro.attention_claims` (issue 13; docs/attention.md §5). Besides the runs' own figures, the lab
draws ``accuracy__runs``, ``input_share__<arch>``, ``term_shares_by_arch__<task>`` (the nine terms of AED and AO side
by side, per task) and ``share_vs_match__runs`` (temporal share against the average-attention match, every run).

>>> AttentionReproduction().load_settings(quick=True).name
'attention'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from innerworks.attention.analyze import RunAnalysis, analyze_model
from innerworks.repro.attention_claims import PAPER_ARCHS, SOURCES, THRESHOLDS, check_claims, share_match_points
from innerworks.repro.base import Context, LabOutcome, Reproduction
from innerworks.train.runspec import RunSpec, check_run_names

T = THRESHOLDS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")




class AnalysisSettings(_Strict):
    """How much of each test split is analysed."""

    n_eval: int | None = Field(500, ge=1, description="first n test rows analysed (null: all)")
    batch_size: int = Field(256, ge=1)
    k: int = Field(5, ge=1, description="top-k aligned positions for the dot ratios (5 in the paper's code)")
    n_view: int = Field(200, ge=1, description="rows re-run for the sample heatmap and PCA views")


class AttentionReproConfig(_Strict):
    """A ``repro attention`` settings file (see ``innerworks/repro/settings/attention_quick.yaml``)."""

    name: str = "attention"
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    runs: dict[str, RunSpec] = Field(min_length=1)

    @field_validator("runs")
    @classmethod
    def _names(cls, v: dict[str, RunSpec]) -> dict[str, RunSpec]:
        return check_run_names(v)


# ------------------------------------------------------------------------------------------------------------- run
def _summary_figures(out: Path, runs: dict[str, RunAnalysis]) -> list[str]:
    """The lab's figures across runs: accuracy per run, input share per task, the nine terms of AED and AO side by
    side per task, and the temporal share against the average-attention match."""
    from innerworks.attention import figures as F

    names = []
    acc = {n: r.metrics.get("phrase_accuracy") for n, r in runs.items()}
    if acc:
        F.input_share_figure(out, "accuracy__runs", acc, "test phrase accuracy per run (greedy decoding)",
                             T.accuracy_min, ylabel="test phrase accuracy")
        names.append("accuracy__runs")
    archs = sorted({n[len("one_to_one_"):] if n.startswith("one_to_one_") else n.split("_", 1)[1] for n in runs})
    tasks = ("one_to_one", "escan", "translation", "sort")
    for arch in archs:
        shares = {t: runs[f"{t}_{arch}"].summary["input_driven_dot_ratio"] for t in tasks
                  if f"{t}_{arch}" in runs and runs[f"{t}_{arch}"].summary.get("has_attention")}
        if len(shares) >= 2 and "one_to_one" in shares:
            F.input_share_figure(out, f"input_share__{arch}", shares,
                                 f"{arch.upper()}: input-driven dot-ratio share per task")
            names.append(f"input_share__{arch}")
    for task in tasks:
        by_arch = {a: runs[f"{task}_{a}"].summary["dot_ratios"] for a in PAPER_ARCHS
                   if f"{task}_{a}" in runs and runs[f"{task}_{a}"].summary.get("has_attention")}
        if by_arch:
            F.term_shares_by_arch_figure(out, f"term_shares_by_arch__{task}", by_arch,
                                         f"{task}: dot ratios of the nine terms (top-5, head-averaged), AED vs AO")
            names.append(f"term_shares_by_arch__{task}")
    pts = share_match_points(runs, (*PAPER_ARCHS, "transformer"))
    if pts:
        F.share_vs_match_figure(out, "share_vs_match__runs", pts,
                                "temporal share against how well the average attention matches each sample's")
        names.append("share_vs_match__runs")
    return names


def _runs_markdown(runs: dict[str, RunAnalysis], timings: dict[str, Any]) -> str:
    lines = ["## Runs", "",
             "| run | task | arch | phrase acc. | word acc. | BLEU | μE·μD ratio | input-driven share | avg-attn match "
             "| diagonal | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    for n, r in runs.items():
        s, m = r.summary, r.metrics
        lines.append(f"| {n} | {r.task} | {r.arch} | {f(m.get('phrase_accuracy'))} | {f(m.get('word_accuracy'))} | "
                     f"{f(m.get('bleu'))} | {f(s.get('temporal_share'))} | {f(s.get('input_driven_dot_ratio'))} | "
                     f"{f(s.get('average_attention_match'))} | {f(s.get('temporal_diagonal_fraction'))} | "
                     f"{f(timings.get(n, {}).get('train_wall_s'))} |")
    return "\n".join(lines) + "\n"


class AttentionReproduction(Reproduction):
    """The attention paper's findings: temporal and input-driven parts of hidden states and attention scores."""

    name = "attention"
    title = "the attention paper's findings (encoder-decoder attention)"
    Settings = AttentionReproConfig
    thresholds = THRESHOLDS
    sources = SOURCES
    tasks = ("seq2seq",)

    def reproduce(self, settings: AttentionReproConfig, ctx: Context) -> LabOutcome:
        """Train (or reuse) and decompose every run, draw the summary figures, check the claims."""
        a = settings.analysis
        runs: dict[str, RunAnalysis] = {}
        for name, _recipe, trained in ctx.trained_runs():
            runs[name] = analyze_model(trained.model, trained.data.test, name=name, metrics=trained.metrics["test"],
                                       out=ctx.out / "runs" / name, fig_out=ctx.out, n_eval=a.n_eval,
                                       batch_size=a.batch_size, k=a.k, n_view=a.n_view, progress=ctx.options.progress)
        figures = [f for r in runs.values() for f in r.figures] + _summary_figures(ctx.out, runs)
        claims = check_claims(runs, figures)
        extra = {
            "accuracies": {n: r.metrics for n, r in runs.items()},
            "runs": {n: {"dir": f"runs/{n}", "task": r.task, "arch": r.arch, "metrics": r.metrics,
                         "summary": r.summary, "timing": ctx.timings.get(n, {}),
                         "analysis_json": f"runs/{n}/analysis.json", "analysis": r.to_dict()["analysis"]}
                     for n, r in runs.items()},
        }
        return LabOutcome(claims, extra, [f"figures/{f}.png" for f in figures],
                          notes=_runs_markdown(runs, ctx.timings))


__all__ = ["THRESHOLDS", "AttentionReproConfig", "AttentionReproduction", "check_claims"]
