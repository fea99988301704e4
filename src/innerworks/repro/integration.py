"""``innerworks repro integration``: train what the integration claims need, analyse each run, check each claim.

Settings come from a YAML file (``integration_quick.yaml`` or ``integration_full.yaml`` in
``innerworks/repro/settings``; ``--config`` picks another): the analysis settings
(:class:`~innerworks.dynamics.analyze.AnalysisSettings`), the runs (each a built-in recipe plus overrides) and the
word-count-only checks (corpora too small to train on, reported). Every run is trained with the shared
:func:`innerworks.train.train` into ``out/runs/<name>/`` (a finished run with the same recipe is reused), analysed
with :func:`innerworks.dynamics.analyze.analyze_model` (``out/runs/<name>/analysis.json``), and the claims below are
checked. A claim with no runs in the configuration is reported with ``passed: null``; a claim needs at least two
cell types.

The measured object is the attractor manifold's cloud of approximate fixed points (the co-author's protocol, see
:mod:`innerworks.dynamics.manifold`); its statistics are the participation ratio PR of its PCA eigenvalues and the
readout dimension ``d_read`` (the fewest top PCs whose projection keeps R² ≥ 0.95 of the logits). The exact roots
are reported apart and never decide a dimension. Rules and thresholds (:data:`THRESHOLDS`) were fixed by the issue
owner (issue 12) before measuring; a failing claim is a finding, never a reason to change them.

- ``flipflop_tanh_lattice``, ``flipflop_gru_converges`` (extension): the finder's checks on 3-bit flip-flops.
- ``categorical_dim_n{N}`` (N = 2..5, synthetic): ``|PR − (N−1)| ≤ 0.75`` and ``d_read = N − 1``.
- ``categorical3_triangle``: every pairwise readout angle within 5° of 120°.
- ``natural_categorical_dim``: AG News (4 classes), DBPedia reduced to 3 and to 4 classes: the categorical rule.
- ``ordered_reduces_dim``: synthetic 5-class ordered (awesome..awful, uniform scores): ``PR ≤ N − 1.5`` and
  ``d_read ≤ N − 2`` (the co-author's "about 2" is reported beside it).
- ``sst5_reduces_dim`` (extension): SST-5, a stand-in for Yelp-5/Amazon-5: the same rule.
- ``scalar_evidence_1d``: the ordered task whose evidence is one scalar (good/bad/the): ``|PR − 1| ≤ 0.75`` and
  ``d_read = 1``.
- ``slow_modes_match_dim``: on each categorical run, the median over manifold points of the number of modes with
  ``τ ≥`` the mean document length equals N − 1.
- ``wordcount_predicts``: for every run above, ``|PR_words − PR_rnn| ≤ 0.75``, and on both sides the ordered runs
  have a lower PR than the categorical runs with the same N.
- ``line_attractor_binary`` (predecessor): binary sentiment runs: (i) ``|PR − 1| ≤ 0.75`` and ``d_read = 1``;
  (ii) ``|cos(m, w)| ≥ 0.7`` (first PC, readout difference); (iii) median ``|cos(r₁, m)|`` above the 99th percentile
  of random unit vectors; (iv) median slowest τ ≥ the mean document length and ≥ 3 × the second slowest;
  (v) valence AUC of ``ℓ₁ᵀ J_inp x`` on the ±100 strongest bag-of-words words ≥ 0.8.

>>> IntegrationReproduction().load_settings(quick=True).name
'integration'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from innerworks.dynamics.analyze import AnalysisSettings, analyze_model
from innerworks.dynamics.figures import dimension_figure
from innerworks.dynamics.wordcount import corpus_word_count
from innerworks.repro.base import Context, LabOutcome, Reproduction
from innerworks.repro.claims import Claim
from innerworks.repro.integration_claims import NOTES, SOURCES, THRESHOLDS, RunRecord, RunRole, check_claims, run_role
from innerworks.train.runspec import RunSpec, check_run_names


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntegrationReproConfig(_Strict):
    """A ``repro integration`` settings file (see ``innerworks/repro/settings/integration_quick.yaml``)."""

    name: str = "integration"
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    runs: dict[str, RunSpec] = Field(min_length=1)
    wordcount_checks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="name -> natural data config: word-count PR only (reported, no claim)")
    natural_categorical_required: list[str] = Field(
        default_factory=lambda: ["ag_news4", "dbpedia3", "dbpedia4"],
        description="natural_categorical_dim: the corpus+N groups that must have run (issue 12: AG News, DBPedia "
                    "reduced to 3 and to 4 classes)")

    @field_validator("runs")
    @classmethod
    def _names(cls, v: dict[str, RunSpec]) -> dict[str, RunSpec]:
        return check_run_names(v)


# ----------------------------------------------------------------------------------------------------- the stage
def _dimension_rows(records: dict[str, RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records.values():
        if r.analysis.task != "classification":
            continue
        s = r.analysis.summary
        rows.append({"run": r.name, "dataset": f"{r.role.family}{r.n}", "cell": r.role.cell,
                     "predicted": s["wordcount"]["participation_ratio"],
                     "measured": s["manifold"]["participation_ratio"],
                     "measured_states": (s["states"]["pca"] or {}).get("participation_ratio"),
                     "readout_dimension": s["manifold"]["readout_dimension"]})
    return rows


def _fmt(v: Any, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _summary_notes(claims: list[Claim], records: dict[str, RunRecord], checks: dict[str, Any]) -> str:
    lines = [f"Rules fixed by the issue owner (issue 12; `innerworks.repro.integration`, notes `{NOTES}`). The "
             "manifold is the cloud of approximate fixed points at zero input (co-author protocol); PR is its "
             "participation ratio, d_read the fewest top PCs keeping R² >= 0.95 of the logits. Exact roots are "
             "reported apart and never decide a dimension.", "",
             "| run | cell | test acc. | chance | manifold pts | PR | d_read | dim 95% | acc. top 1/2/3 PCs | "
             "exact roots | PR words | train s | analysis s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records.values():
        s = r.analysis.summary
        if r.analysis.task != "classification":
            lines.append(f"| {r.name} | {r.role.cell} | {_fmt(r.metrics.get('accuracy'), 3)} | – | – | – | – | – | – | "
                         f"{s['fixed_points']['unstable_histogram']} | – | {r.timing.get('train_wall_s', 0):.1f} | "
                         f"{r.timing.get('analysis_wall_s', 0):.1f} |")
            continue
        m = s["manifold"]
        acc = "/".join(_fmt(v) for v in m["accuracy_by_dimension"][:3]) or "–"
        lines.append(f"| {r.name} | {r.role.cell}-{s['hidden_size']} | {_fmt(s['test_accuracy'], 3)} | "
                     f"{_fmt(s['chance_accuracy'], 3)} | {m['n_points']} | {_fmt(m['participation_ratio'])} | "
                     f"{_fmt(m['readout_dimension'])} | {_fmt(m['dimension_95'])} | {acc} | "
                     f"{s['exact_roots']['n']} | {_fmt(s['wordcount']['participation_ratio'])} | "
                     f"{r.timing.get('train_wall_s', 0):.1f} | {r.timing.get('analysis_wall_s', 0):.1f} |")
    for name, c in checks.items():
        lines.append(f"\nWord-count-only check `{name}` (reported, no claim): {c['n_documents']} documents, PR "
                     f"{c['participation_ratio']}, dimension at 95% {c['dimensions']['0.95']}.")
    failed = [c for c in claims if c.passed is False]
    if failed:
        lines += ["", "## Claims that did not pass", ""]
        lines += [f"- `{c.id}`: {c.details.get('explanation', '')}" for c in failed]
    return "\n".join(lines) + "\n"


class IntegrationReproduction(Reproduction):
    """The integration papers' findings: fixed-point manifolds of recurrent text classifiers and flip-flops."""

    name = "integration"
    title = "the integration papers' findings (recurrent text classifiers)"
    Settings = IntegrationReproConfig
    thresholds = THRESHOLDS
    sources = SOURCES
    tasks = ("classification", "flipflop")

    def reproduce(self, settings: IntegrationReproConfig, ctx: Context) -> LabOutcome:
        """Train (or reuse) and analyse every run, run the word-count-only checks, check the claims."""
        out, seed = ctx.out, ctx.options.seed
        analysis = settings.analysis.model_copy(update={"seed": settings.analysis.seed + seed})
        records: dict[str, RunRecord] = {}
        for name, recipe, trained in ctx.trained_runs():
            test = trained.metrics.get("test", {})
            an = analyze_model(trained.model, trained.data, task=recipe.task, name=name, settings=analysis,
                               metrics=test, out=out / "runs" / name, fig_out=out)
            records[name] = RunRecord(name, run_role(recipe), an, test, ctx.timings.setdefault(name, {}))
        checks = {}
        for name, data_cfg in settings.wordcount_checks.items():
            ctx.console.print(f"[bold]integration[/] word-count check {name}")
            checks[name] = corpus_word_count(data_cfg, seed)
        figures = [f for r in records.values() for f in r.analysis.figures]
        rows = _dimension_rows(records)
        if rows:
            dimension_figure(out, "dimension", rows, "Participation ratio: word counts (x) vs the manifold (y)")
            figures.append("dimension")
        claims = check_claims(records, settings.natural_categorical_required)
        extra = {
            "dimensions": rows,
            "wordcount_checks": checks,
            "runs": {n: {"dir": f"runs/{n}", "family": r.role.family, "cell": r.role.cell,
                         "num_classes": r.role.num_classes, "metrics": r.metrics, "timing": r.timing,
                         "analysis_json": f"runs/{n}/analysis.json", "analysis": r.analysis.summary}
                     for n, r in records.items()},
        }
        return LabOutcome(claims, extra, [f"figures/{f}.png" for f in figures],
                          notes=_summary_notes(claims, records, checks))


__all__ = ["THRESHOLDS", "IntegrationReproConfig", "IntegrationReproduction", "RunRecord", "RunRole", "check_claims",
           "run_role"]
