"""``innerworks repro integration``: train what the integration claims need, analyse each run, check each claim.

Settings come from a YAML file (``integration_quick.yaml`` or ``integration_full.yaml`` in
``innerworks/repro/settings``; ``--config`` picks another): the analysis settings
(:class:`~innerworks.dynamics.analyze.AnalysisSettings`), the runs (each a built-in recipe plus overrides) and the
word-count-only checks (datasets too small to train on). Every run is trained
with the shared :func:`innerworks.train.train` into ``out/runs/<name>/`` (a finished run with the same recipe
is reused), analysed with :func:`innerworks.dynamics.analyze.analyze_model` (``out/runs/<name>/analysis.json``,
figures in ``out/figures/``), and the claims below are checked. ``results.json`` (the shared claims format),
``summary.md`` and the figures are written into ``out``.

What a run contributes is read from its recipe: ``task: flipflop`` (by cell), synthetic ``categorical`` data with N
classes, synthetic ``ordered`` data, or a natural corpus (``ag_news``, ``sst5``). A claim with no runs in the
configuration is reported with ``passed: null``; a claim that needs two cell types and has fewer fails.

Claims and their rules. The thresholds (:data:`THRESHOLDS`) are fixed from the notes
(``shared/papers/integration.md``) and the issue text, before anything was measured; they are never tuned to the
results. Every dimension is the number of
principal components reaching 95% of the variance ("N−1 dimensions ... explaining 95% of the variance", notes §3),
measured on the attractor manifold at zero input, never on all visited states (notes §8; the all-states figure is
reported beside it in ``details``). A dimension claim about k dimensions needs at least k + 2 points (n points span
at most n − 1 dimensions, so fewer could never show more than k): with fewer the measurement cannot test the claim,
and the claim fails as "not resolvable".

The manifold's points: the certified fixed points plus stalled slow points, without points beyond FixedPointFinder's
outlier distance (10 × the visited states' mean distance from their centroid). The authors' slow points are
reported beside them in every run's details; why the fixed-point set and not the slow points is the measured set is
recorded in ``docs/dynamics.md``.

- ``flipflop_tanh_lattice``: a trained 3-bit tanh flip-flop has exactly 8 stable fixed points and 12/6/1 with 1/2/3
  unstable modes, every one certified (``‖F(h) − h‖ < 1e-8``) (issue part 6).
- ``flipflop_gru_converges``: on a trained GRU flip-flop every returned point is certified, the stable points read out
  all 2ⁿ sign patterns, and the attractor audit finds no attractor outside the reported set.
- ``categorical_dim_n{N}`` (N = 2..5): dimension == N − 1 for every cell type (paper; notes §4.1).
- ``categorical3_triangle``: 3 classes: every pairwise readout angle within 5° of 120° (issue), for every cell type.
- ``ordered_line_attractor``: ordered scalar-evidence data give a line attractor, for every cell type: (i) dimension
  == 1; (ii) the slowest mode is integrating: the median over the linearised points of ``|log|λ₁||`` is at most
  ``1/L`` with L the longest document, i.e. its time constant is at least a whole document, so evidence from the
  first word is still held (≥ 1/e) at the last (notes §6: "an eigenvalue ≈ 1 with a time constant far longer than
  the document"); (iii) the median ``|cos|`` between that mode's left eigenvector and the readout direction
  ``w_last − w_first`` is at least ``1/√2`` (closer to parallel than to perpendicular; a random direction in S
  dimensions gives about ``√(2/(πS))``, 0.1 for S = 64).
- ``ag_news_dim``: AG News gives a 3-D manifold: dimension == 3 for every cell type (notes §8: top 3 PCs 98%, the
  4th 1.1%).
- ``sst5_dim``: 5-class ordered reviews (SST-5) give a low-dimensional manifold: dimension <= 2 (issue).
- ``yelp5_wordcount_dim``: the second, small check: Yelp-5's 1,000 reviews are too few to train on, so only their
  word-count prediction is checked: predicted dimension <= 2.
- ``wordcount_match_<family>`` (categorical, ordered, ag_news, sst5): the word-count prediction's dimension (class ×
  word matrix, 95% variance) equals the measured fixed-point dimension (95% variance) for every run of the family.

>>> IntegrationReproduction().load_settings(quick=True).name
'integration'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from innerworks.data.types import TextDataset
from innerworks.dynamics.analyze import AnalysisSettings, RunAnalysis, analyze_model, lattice_counts
from innerworks.dynamics.figures import dimension_figure
from innerworks.repro.base import Context, LabOutcome, Reproduction
from innerworks.repro.claims import Claim, Source, Thresholds
from innerworks.train.runspec import RunSpec, check_run_names

NOTES = "shared/papers/integration.md"

THRESHOLDS = Thresholds(
    variance=(0.95, "notes §3: 'N−1 dimensions ... explaining 95% of the variance'"),
    triangle_max_deviation_deg=(5.0, "issue: every readout angle within 5° of 120°"),
    line_dimension=(1, "a line attractor is one-dimensional"),
    line_alignment_min=(1 / math.sqrt(2), "closer to parallel than perpendicular; a random direction gives ~0.1"),
    ag_news_dimension=(3, "notes §8: top 3 PCs hold 98% of the variance, the 4th 1.1%"),
    ordered_reviews_max_dimension=(2, "issue: 5-class ordered reviews give a low-dimensional manifold"),
    min_cell_types=(2, "issue: each claim holds across at least two cell types"),
    certificate=(1e-8, "a fixed point is certified when |F(h) − h| < 1e-8 in float64"),
)
T = THRESHOLDS
VARIANCE = T.variance
TRIANGLE_MAX_DEVIATION_DEG = T.triangle_max_deviation_deg
LINE_DIM = T.line_dimension
LINE_ALIGNMENT_MIN = T.line_alignment_min
AG_NEWS_DIM = T.ag_news_dimension
ORDERED_REVIEWS_MAX_DIM = T.ordered_reviews_max_dimension
MIN_CELL_TYPES = T.min_cell_types

SOURCES = {
    "flipflop_*": (Source.EXTENSION, "3-bit flip-flop (Sussillo & Barak 2013): a check of the fixed-point finder"),
    "categorical_dim_n*": (Source.PAPER, "ICLR 2021 abstract"),
    "categorical3_triangle": (Source.AUTHOR_CODE, "ramasesh/rnn_dynamics readout geometry"),
    "ordered_line_attractor": (Source.PAPER, "ICLR 2021 abstract; notes §6"),
    "ag_news_dim": (Source.PAPER, "notes §8 (AG News, 4 classes)"),
    "sst5_dim": (Source.EXTENSION, "SST-5 stands in for the paper's Yelp-5/Amazon-5"),
    "yelp5_wordcount_dim": (Source.PAPER, "ICLR 2021 abstract (word-count prediction)"),
    "wordcount_match_*": (Source.PAPER, "ICLR 2021 abstract (word-count prediction)"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")




class IntegrationReproConfig(_Strict):
    """A ``repro integration`` settings file (see ``innerworks/repro/settings/integration_quick.yaml``)."""

    name: str = "integration"
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    runs: dict[str, RunSpec] = Field(min_length=1)
    wordcount_checks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="name -> natural data config: word-count prediction only (no training)")

    @field_validator("runs")
    @classmethod
    def _names(cls, v: dict[str, RunSpec]) -> dict[str, RunSpec]:
        return check_run_names(v)


# ------------------------------------------------------------------------------------------------------- roles
@dataclass
class RunRole:
    """What a run contributes: ``family`` (flipflop, categorical, ordered, or a corpus name), classes, cell."""

    family: str
    cell: str
    num_classes: int | None = None


def run_role(recipe: Any) -> RunRole:
    """Read a run's role from its recipe.

    >>> from innerworks.train.config import load_recipe
    >>> run_role(load_recipe("synthetic/categorical3_gru"))
    RunRole(family='categorical', cell='gru', num_classes=3)
    """
    cell = str(recipe.model.get("cell", "gru" if recipe.task == "classification" else "vanilla"))
    if recipe.task == "flipflop":
        return RunRole("flipflop", cell)
    d = recipe.data
    if d.get("source") == "synthetic":
        plain = not d.get("multilabel") and not d.get("correlations") and not d.get("context_words")
        task = d.get("task", "categorical")
        fam = task if plain else f"{task}_variant"
        return RunRole(fam, cell, int(d.get("num_classes", 3)))
    return RunRole(str(d.get("corpus", "natural")), cell)


@dataclass
class RunRecord:
    """A trained and analysed run."""

    name: str
    role: RunRole
    analysis: RunAnalysis
    metrics: dict[str, Any]
    timing: dict[str, float]


# ------------------------------------------------------------------------------------------------------ claims
def _dim(a: RunAnalysis, which: str = "manifold") -> int | None:
    pca = a.summary.get(which, {}).get("pca")
    return None if pca is None else int(pca["dimensions"][str(VARIANCE)])


def _n_points(a: RunAnalysis) -> int:
    return int(a.summary["manifold"]["n_points"])


def resolvable(a: RunAnalysis, k: int) -> bool:
    """True when the manifold points could show more than ``k`` dimensions (at least ``k + 2`` points)."""
    return _n_points(a) >= k + 2


def _dim_checked(a: RunAnalysis, k: int) -> int | str | None:
    """The measured dimension, or ``"not resolvable (n points)"`` when there are too few points to test ``k``."""
    d = _dim(a)
    if not resolvable(a, k):
        n = _n_points(a)
        return f"not resolvable ({n} point{'s' if n != 1 else ''})"
    return d


def _dim_details(r: RunRecord) -> dict[str, Any]:
    s = r.analysis.summary
    man, st = s["manifold"]["pca"], s["states"]["pca"]
    return {"run": r.name, "cell": r.role.cell, "dimension": _dim(r.analysis),
            "manifold_points": s["manifold"]["points"], "n_manifold_points": s["manifold"]["n_points"],
            "n_fixed_points": s["fixed_points"]["n"], "n_stalled_slow_points": s["fixed_points"]["n_slow"],
            "slow_point_dimension": _dim(r.analysis, "slow_points"), "n_slow_manifold_points": s["slow_points"]["n"],
            "slow_point_participation_ratio": (s["slow_points"]["pca"] or {}).get("participation_ratio"),
            "explained": None if man is None else man["explained"][:6],
            "participation_ratio": None if man is None else man["participation_ratio"],
            "all_states_dimension": _dim(r.analysis, "states"),
            "all_states_explained": None if st is None else st["explained"][:6],
            "all_states_participation_ratio": None if st is None else st["participation_ratio"],
            "test_accuracy": r.metrics.get("accuracy")}


def _fig(r: RunRecord, kind: str) -> str | None:
    name = f"{kind}__{r.name}"
    return f"figures/{name}.png" if name in r.analysis.figures else None


def _no_runs(cid: str, statement: str, expected: str, what: str) -> Claim:
    return Claim(cid, statement, expected, None, None,
                 details={"explanation": f"not evaluated: the configuration has no {what} run"})


def _cells_ok(runs: list[RunRecord]) -> tuple[bool, list[str]]:
    cells = sorted({r.role.cell for r in runs})
    return len(cells) >= MIN_CELL_TYPES, cells


def _per_cell_claim(cid: str, statement: str, expected: str, runs: list[RunRecord], what: str,
                    measure: Any, check: Any, figure_kind: str, extra: dict[str, Any] | None = None) -> Claim:
    """A claim evaluated on each run (one per cell type); passes when every run passes and >= 2 cell types ran."""
    if not runs:
        return _no_runs(cid, statement, expected, what)
    measured, per_run, passes = {}, {}, []
    for r in runs:
        m = measure(r)
        ok = m is not None and bool(check(m))
        measured[r.role.cell if sum(x.role.cell == r.role.cell for x in runs) == 1 else r.name] = m
        per_run[r.name] = {"measured": m, "passed": ok, **_dim_details(r)}
        passes.append(ok)
    enough, cells = _cells_ok(runs)
    details: dict[str, Any] = {"runs": per_run, "cell_types": cells, **(extra or {})}
    if not enough:
        details["explanation"] = (f"only {len(cells)} cell type(s) ({', '.join(cells)}); the claim needs at least "
                                  f"{MIN_CELL_TYPES}")
    elif not all(passes):
        bad = [n for n, v in per_run.items() if not v["passed"]]
        details["explanation"] = f"failed on {', '.join(bad)} (measured values in runs.*.measured)"
    return Claim(cid, statement, expected, measured, all(passes) and enough, figure=_fig(runs[0], figure_kind),
                 details=details)


def flipflop_claims(runs: list[RunRecord]) -> list[Claim]:
    """``flipflop_tanh_lattice`` and ``flipflop_gru_converges``."""
    claims = []
    tanh = [r for r in runs if r.role.cell == "vanilla"]
    st = "A trained 3-bit tanh flip-flop has 8 stable fixed points and 12/6/1 with 1/2/3 unstable modes, all certified"
    ex = "unstable-mode histogram == {0: 8, 1: 12, 2: 6, 3: 1} and every residual < 1e-8"
    if not tanh:
        claims.append(_no_runs("flipflop_tanh_lattice", st, ex, "tanh flip-flop"))
    else:
        per = {}
        for r in tanh:
            s = r.analysis.summary
            per[r.name] = {"histogram": s["fixed_points"]["unstable_histogram"],
                           "max_residual": s["fixed_points"]["max_residual"],
                           "all_certified": s["fixed_points"]["all_certified"], "n_bits": s["n_bits"],
                           "audit_complete": s["audit"]["complete"], "accuracy": r.metrics.get("accuracy")}
        ok = all(v["n_bits"] == 3 and v["histogram"] == lattice_counts(3) and v["all_certified"] for v in per.values())
        r0 = tanh[0]
        det: dict[str, Any] = {"runs": per, "search": "mode=both, noise_scale=1.0 from visited states, zero input"}
        if not ok:
            det["explanation"] = "the histogram or the certificate differs from the 27-point lattice (see runs)"
        claims.append(Claim("flipflop_tanh_lattice", st, ex, per[r0.name]["histogram"], ok,
                            figure=_fig(r0, "pca3d"), details=det))
    gru = [r for r in runs if r.role.cell == "gru"]
    st = "The fixed-point search converges on a trained GRU flip-flop"
    ex = ("every returned point certified (residual < 1e-8), the stable points read out all 2^n sign patterns, and the "
          "attractor audit is complete")
    if not gru:
        claims.append(_no_runs("flipflop_gru_converges", st, ex, "GRU flip-flop"))
    else:
        per = {}
        for r in gru:
            s = r.analysis.summary
            per[r.name] = {"n_fixed_points": s["fixed_points"]["n"], "max_residual": s["fixed_points"]["max_residual"],
                           "all_certified": s["fixed_points"]["all_certified"],
                           "histogram": s["fixed_points"]["unstable_histogram"],
                           "outcomes": s["fixed_points"]["outcomes"],
                           "sign_patterns": s["memories"]["distinct_sign_patterns"],
                           "expected_patterns": s["memories"]["expected"], "audit_complete": s["audit"]["complete"],
                           "newton_only_histogram": s["newton_only"]["unstable_histogram"]}
        ok = all(v["all_certified"] and v["sign_patterns"] == v["expected_patterns"] and v["audit_complete"]
                 for v in per.values())
        det = {"runs": per, "note": "bench/fixed_points.py compares a FixedPointFinder-style joint Adam search on the "
                                    "same network"}
        if not ok:
            det["explanation"] = "a point is uncertified, a memory is missing, or the audit is incomplete (see runs)"
        r0 = gru[0]
        claims.append(Claim("flipflop_gru_converges", st, ex,
                            {k: {"max_residual": v["max_residual"], "sign_patterns": v["sign_patterns"],
                                 "audit_complete": v["audit_complete"]} for k, v in per.items()},
                            ok, figure=_fig(r0, "pca3d"), details=det))
    return claims


def categorical_claims(runs: list[RunRecord]) -> list[Claim]:
    """``categorical_dim_n{N}`` for N = 2..5 (plus any other N configured) and ``categorical3_triangle``."""
    claims = []
    by_n: dict[int, list[RunRecord]] = {}
    for r in runs:
        by_n.setdefault(int(r.role.num_classes or 0), []).append(r)
    for n in sorted(set(by_n) | {2, 3, 4, 5}):
        claims.append(_per_cell_claim(
            f"categorical_dim_n{n}",
            f"{n}-class categorical synthetic data give an {n - 1}-dimensional attractor manifold",
            f"PCA dimension of the fixed/slow points at {VARIANCE:.0%} variance == {n - 1} (from >= {n + 1} "
            f"points), for each of >= {MIN_CELL_TYPES} cell types", by_n.get(n, []), f"{n}-class categorical",
            lambda r, n=n: _dim_checked(r.analysis, n - 1), lambda m, n=n: m == n - 1, "pca3d"))
    three = by_n.get(3, [])

    def angles(r: RunRecord) -> list[float] | None:
        ro = r.analysis.summary.get("readout")
        return None if ro is None else ro["pair_angles"]

    claims.append(_per_cell_claim(
        "categorical3_triangle", "3 classes give an equilateral triangle: the readouts sit 120° apart",
        f"every pairwise readout angle within {TRIANGLE_MAX_DEVIATION_DEG:g}° of 120°, for each of >= "
        f"{MIN_CELL_TYPES} cell types", three, "3-class categorical", angles,
        lambda m: max(abs(a - 120.0) for a in m) <= TRIANGLE_MAX_DEVIATION_DEG, "readout"))
    return claims


def line_attractor_measure(r: RunRecord) -> dict[str, Any] | None:
    """The three numbers of ``ordered_line_attractor`` for one run (None when nothing could be linearised)."""
    s = r.analysis.summary
    lin = s.get("linearization")
    if lin is None:
        return None
    return {"dimension": _dim_checked(r.analysis, LINE_DIM),
            "median_abs_log_top_eigenvalue": lin["top_abs_log_eigenvalue_median"],
            "median_top_abs_eigenvalue": lin["top_abs_eigenvalue"]["median"],
            "max_document_length": s["document_length"]["max"],
            "bound_1_over_L": 1.0 / s["document_length"]["max"],
            "median_alignment": lin["alignment_top_mode"]["median"],
            # not part of the rule: the slowest mode's right eigenvector (the line's direction) against the readout
            "diagnostic_median_right_alignment": (lin.get("right_alignment_top_mode") or {}).get("median")}


def _line_ok(m: dict[str, Any]) -> bool:
    return (m["dimension"] == LINE_DIM and m["median_abs_log_top_eigenvalue"] <= m["bound_1_over_L"]
            and m["median_alignment"] >= LINE_ALIGNMENT_MIN)


def ordered_claims(runs: list[RunRecord]) -> list[Claim]:
    """``ordered_line_attractor``."""
    return [_per_cell_claim(
        "ordered_line_attractor", "Ordered scalar-evidence data give a ~1-D line attractor",
        f"dimension == 1 at {VARIANCE:.0%} (>= 3 points); median |log|λ₁|| <= 1/L (time constant >= the longest "
        "document L); "
        f"median |cos(l₁, w_last − w_first)| >= 1/√2 ≈ {LINE_ALIGNMENT_MIN:.3f}; for each of >= {MIN_CELL_TYPES} "
        "cell types", runs, "ordered synthetic", line_attractor_measure, _line_ok, "eigenvalues",
        extra={"linearised_at": "fixed/slow points at zero input (a seeded subset)"})]


def natural_claims(runs_by_family: dict[str, list[RunRecord]]) -> list[Claim]:
    """``ag_news_dim`` and ``sst5_dim``."""
    return [
        _per_cell_claim("ag_news_dim", "AG News (4 topics) gives a ~3-D attractor manifold",
                        f"PCA dimension of the fixed/slow points at {VARIANCE:.0%} variance == {AG_NEWS_DIM} "
                        f"(from >= {AG_NEWS_DIM + 2} points), for each "
                        f"of >= {MIN_CELL_TYPES} cell types", runs_by_family.get("ag_news", []), "AG News",
                        lambda r: _dim_checked(r.analysis, AG_NEWS_DIM), lambda m: m == AG_NEWS_DIM, "pca3d"),
        _per_cell_claim("sst5_dim", "5-class ordered reviews (SST-5) give a low-dimensional manifold",
                        f"PCA dimension of the fixed/slow points at {VARIANCE:.0%} variance <= "
                        f"{ORDERED_REVIEWS_MAX_DIM} (from >= {ORDERED_REVIEWS_MAX_DIM + 2} points), for each of >= "
                        f"{MIN_CELL_TYPES} cell types",
                        runs_by_family.get("sst5", []), "SST-5",
                        lambda r: _dim_checked(r.analysis, ORDERED_REVIEWS_MAX_DIM),
                        lambda m: isinstance(m, int) and m <= ORDERED_REVIEWS_MAX_DIM, "pca3d"),
    ]


def wordcount_claims(runs_by_family: dict[str, list[RunRecord]]) -> list[Claim]:
    """``wordcount_match_<family>``: predicted dimension == measured dimension for every run of the family."""
    claims = []
    for fam in ("categorical", "ordered", "ag_news", "sst5"):
        runs = runs_by_family.get(fam, [])
        cid = f"wordcount_match_{fam}"
        st = f"The word-count prediction matches the measured manifold dimension ({fam})"
        ex = (f"predicted dimension (class × word matrix, {VARIANCE:.0%} variance) == measured dimension (fixed/slow "
              f"points, {VARIANCE:.0%} variance, from >= predicted + 2 points) for every run")
        if not runs:
            claims.append(_no_runs(cid, st, ex, fam))
            continue
        per, measured, ok = {}, {}, True
        for r in runs:
            pred = int(r.analysis.summary["wordcount"]["dimensions"][str(VARIANCE)])
            meas = _dim_checked(r.analysis, pred)
            good = meas is not None and pred == meas
            ok &= good
            measured[r.name] = {"predicted": pred, "measured": meas}
            per[r.name] = {"predicted": pred, "measured": meas, "passed": good,
                           "predicted_explained": r.analysis.summary["wordcount"]["explained"][:5],
                           "predicted_participation_ratio": r.analysis.summary["wordcount"]["participation_ratio"],
                           **_dim_details(r)}
        det: dict[str, Any] = {"runs": per}
        if not ok:
            det["explanation"] = "prediction and measurement differ on: " + ", ".join(
                n for n, v in per.items() if not v["passed"])
        claims.append(Claim(cid, st, ex, measured, ok, figure="figures/dimension.png", details=det))
    return claims


def yelp_claim(checks: dict[str, dict[str, Any]]) -> Claim:
    """``yelp5_wordcount_dim`` from the word-count-only checks."""
    st = "Yelp-5 (1,000 reviews, a second small check, word counts of all rows) predicts a low-dimensional manifold"
    ex = f"word-count predicted dimension at {VARIANCE:.0%} variance <= {ORDERED_REVIEWS_MAX_DIM}"
    y = checks.get("yelp5")
    if y is None:
        return _no_runs("yelp5_wordcount_dim", st, ex, "yelp5 word-count")
    ok = y["dimensions"][str(VARIANCE)] <= ORDERED_REVIEWS_MAX_DIM
    det = dict(y)
    if not ok:
        det["explanation"] = "the Yelp-5 class × word matrix needs more than 2 components for 95% of its variance"
    return Claim("yelp5_wordcount_dim", st, ex, y["dimensions"][str(VARIANCE)], ok, details=det)


def check_claims(records: dict[str, RunRecord], checks: dict[str, dict[str, Any]] | None = None) -> list[Claim]:
    """Every claim, from the analysed runs (and the word-count-only checks)."""
    fam: dict[str, list[RunRecord]] = {}
    for r in records.values():
        fam.setdefault(r.role.family, []).append(r)
    claims = flipflop_claims(fam.get("flipflop", []))
    claims += categorical_claims(fam.get("categorical", []))
    claims += ordered_claims(fam.get("ordered", []))
    claims += natural_claims(fam)
    claims.append(yelp_claim(checks or {}))
    claims += wordcount_claims(fam)
    return claims


# ----------------------------------------------------------------------------------------------------- the stage
def _concat(parts: list[TextDataset]) -> TextDataset:
    width = max(int(p.tokens.shape[1]) for p in parts)
    tokens = torch.cat([torch.nn.functional.pad(p.tokens, (0, width - p.tokens.shape[1])) for p in parts])
    return TextDataset(tokens, torch.cat([p.lengths for p in parts]), torch.cat([p.labels for p in parts]),
                       list(parts[0].vocab), list(parts[0].class_names))


def wordcount_check(data_cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """The word-count prediction of a whole natural corpus (train + val + test: nothing is trained, so every
    document is evidence), with the training split's alone beside it (no model)."""
    from innerworks.data.natural import load_natural
    from innerworks.dynamics.wordcount import word_count_prediction

    splits, _ = load_natural(data_cfg, seed)
    everything = _concat([splits.train, splits.val, splits.test])
    wc = word_count_prediction(everything, (0.9, VARIANCE))
    wt = word_count_prediction(splits.train, (0.9, VARIANCE))
    return {"n_documents": len(everything), "num_classes": everything.num_classes,
            "explained": [round(float(v), 6) for v in wc.explained[:10]],
            "dimensions": {str(k): v for k, v in wc.dimensions.items()},
            "participation_ratio": round(wc.participation_ratio, 4),
            "train_split_only": {"n_documents": len(splits.train), "explained": [round(float(v), 6) for v in
                                                                                 wt.explained[:10]],
                                 "dimensions": {str(k): v for k, v in wt.dimensions.items()}},
            "data": data_cfg}


def _dimension_rows(records: dict[str, RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records.values():
        if r.analysis.task != "classification":
            continue
        ds = r.role.family + (f"{r.role.num_classes}" if r.role.family in ("categorical", "ordered") else "")
        rows.append({"run": r.name, "dataset": ds, "cell": r.role.cell,
                     "predicted": int(r.analysis.summary["wordcount"]["dimensions"][str(VARIANCE)]),
                     "measured": _dim(r.analysis), "measured_states": _dim(r.analysis, "states")})
    return rows


def _summary_notes(claims: list[Claim], records: dict[str, RunRecord], checks: dict[str, Any]) -> str:
    lines = [f"Thresholds were fixed before measuring (see `innerworks.repro.integration`; notes: `{NOTES}`). "
              f"Dimensions are PCs reaching {VARIANCE:.0%} of the variance of the certified fixed points "
              "(+ stalled slow points) at zero input; the authors' slow points and all visited states are shown "
              "beside it, never in its place.", "",
              "| run | cell | test acc. | fixed pts | dim (fixed pts) | slow pts | dim (slow pts) | "
              "dim (all states) | predicted (word counts) | train s | analysis s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records.values():
        s = r.analysis.summary
        acc = r.metrics.get("accuracy")
        if r.analysis.task == "classification":
            sp = s["slow_points"]["pca"] or {}
            dims = (f"{_dim(r.analysis)} | {s['slow_points']['n']} | {_dim(r.analysis, 'slow_points')} "
                    f"(PR {sp.get('participation_ratio', '–')}) | {_dim(r.analysis, 'states')} | "
                    f"{s['wordcount']['dimensions'][str(VARIANCE)]}")
        else:
            dims = f"{s['fixed_points']['unstable_histogram']} | – | – | – | –"
        lines.append(f"| {r.name} | {r.role.cell}-{s['hidden_size']} | {'–' if acc is None else f'{acc:.3f}'} | "
                     f"{s['fixed_points']['n']} | {dims} | "
                     f"{r.timing['train_wall_s']:.1f} | {r.timing['analysis_wall_s']:.1f} |")
    for name, c in checks.items():
        lines.append(f"\nWord-count-only check `{name}`: {c['n_documents']} documents (all splits), predicted "
                     f"dimension {c['dimensions'][str(VARIANCE)]} at 95% (variance {c['explained'][:4]}); training "
                     f"split alone ({c['train_split_only']['n_documents']} documents): "
                     f"{c['train_split_only']['dimensions'][str(VARIANCE)]}.")
    failed = [c for c in claims if c.passed is False]
    if failed:
        lines += ["", "## Claims that did not pass", ""]
        for c in failed:
            lines.append(f"- `{c.id}`: measured {c.measured}. {c.details.get('explanation', '')}")
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
            checks[name] = wordcount_check(data_cfg, seed)
        figures = [f for r in records.values() for f in r.analysis.figures]
        rows = _dimension_rows(records)
        if rows:
            dimension_figure(out, "dimension", rows, "Manifold dimension: word-count prediction vs fixed points (95%)")
            figures.append("dimension")
        claims = check_claims(records, checks)
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
