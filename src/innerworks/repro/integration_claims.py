"""The integration claims: what each run contributes (its role), the thresholds and sources tables, and the rules.

The rules are listed in :mod:`innerworks.repro.integration`; every number they use is in :data:`THRESHOLDS` and
every claim's source in :data:`SOURCES`. Each rule is a function of analysed runs (:class:`RunRecord`), so it can be
checked on fixed numbers without training.

>>> sorted(SOURCES)[:2]
['categorical3_triangle', 'categorical_dim_n*']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from innerworks.dynamics.analyze import RunAnalysis, lattice_counts
from innerworks.repro.claims import Claim, Source, Thresholds

NOTES = "shared/papers/integration.md"

THRESHOLDS = Thresholds(
    pr_tolerance=(0.75, "issue 12: |PR − expected dimension| <= 0.75"),
    readout_r2=(0.95, "issue 12: d_read keeps >= 95% of the logits' variance (R²)"),
    ordered_pr_margin=(1.5, "issue 12: ordered N classes reduce the PR to <= N − 1.5"),
    ordered_dread_margin=(2, "issue 12: ordered N classes need d_read <= N − 2"),
    triangle_max_deviation_deg=(5.0, "issue: every readout angle within 5° of 120°"),
    line_alignment_min=(0.7, "issue 12 (ii): |cos(first PC, readout direction)| >= 0.7"),
    null_quantile=(0.99, "issue 12 (iii): above the 99th percentile of random unit vectors"),
    tau_ratio_min=(3.0, "issue 12 (iv): slowest τ >= 3 × the second slowest"),
    valence_auc_min=(0.8, "issue 12 (v): valence AUC >= 0.8"),
    wordcount_pr_tolerance=(0.75, "issue 12: |PR_words − PR_rnn| <= 0.75"),
    min_cell_types=(2, "issue: each claim holds across at least two cell types"),
    certificate=(1e-8, "a fixed point is certified when |F(h) − h| < 1e-8 in float64"),
)
T = THRESHOLDS
PR_TOL = T.pr_tolerance
TRIANGLE_MAX_DEVIATION_DEG = T.triangle_max_deviation_deg
MIN_CELL_TYPES = T.min_cell_types
COAUTHOR_ORDERED_DIM = "about 2 (ramasesh/rnn_dynamics dev notebooks: Yelp-5 LSTMs have two slow modes)"

PAPER = "ICLR 2021 abstract"
PRED = "NeurIPS 2019 (Maheswaranathan et al.), line attractor and its linearisation"
SOURCES = {
    "flipflop_*": (Source.EXTENSION, "3-bit flip-flop (Sussillo & Barak 2013): a check of the fixed-point finder"),
    "categorical_dim_n*": (Source.PAPER, PAPER),
    "categorical3_triangle": (Source.AUTHOR_CODE, "ramasesh/rnn_dynamics readout geometry"),
    "natural_categorical_dim": (Source.PAPER, PAPER),
    "ordered_reduces_dim": (Source.PAPER, PAPER),
    "sst5_reduces_dim": (Source.EXTENSION, "SST-5 stands in for the paper's Yelp-5/Amazon-5"),
    "scalar_evidence_1d": (Source.PAPER, PAPER),
    "slow_modes_match_dim": (Source.AUTHOR_CODE, "ramasesh/rnn_dynamics (integrator eigenmodes)"),
    "wordcount_predicts": (Source.PAPER, PAPER + " (word-count prediction)"),
    "line_attractor_binary": (Source.PREDECESSOR, PRED),
}


# ------------------------------------------------------------------------------------------------------- roles
CATEGORICAL_CORPORA = ("ag_news", "dbpedia")
BINARY_CORPORA = ("yelp_polarity", "sst2", "imdb")
ORDERED_FAMILIES = ("ordered", "scalar", "sst5")


@dataclass
class RunRole:
    """What a run contributes: ``family`` (flipflop, categorical, ordered, scalar, or a corpus name), cell, classes."""

    family: str
    cell: str
    num_classes: int | None = None


def run_role(recipe: Any) -> RunRole:
    """Read a run's role from its recipe: synthetic ordered data with awesome/awful are ``ordered``, without them
    (one scalar of evidence: good/bad/the) ``scalar``.

    >>> from innerworks.train.config import load_recipe
    >>> run_role(load_recipe("synthetic/categorical3_gru"))
    RunRole(family='categorical', cell='gru', num_classes=3)
    >>> run_role(load_recipe("natural/dbpedia_gru"))
    RunRole(family='dbpedia', cell='gru', num_classes=4)
    """
    cell = str(recipe.model.get("cell", "gru" if recipe.task == "classification" else "vanilla"))
    if recipe.task == "flipflop":
        return RunRole("flipflop", cell)
    d = recipe.data
    if d.get("source") == "synthetic":
        plain = not d.get("multilabel") and not d.get("correlations") and not d.get("context_words")
        task = d.get("task", "categorical")
        if task == "ordered" and not d.get("extreme_words", False):
            task = "scalar"
        return RunRole(task if plain else f"{task}_variant", cell, int(d.get("num_classes", 3)))
    corpus = str(d.get("corpus", "natural"))
    # the corpus, its k-class subsets and larger training pools are one dataset family (dbpedia3 -> dbpedia)
    fam = next((c for c in CATEGORICAL_CORPORA if corpus.startswith(c)), corpus)
    k = corpus[len(fam):]
    return RunRole(fam, cell, int(k) if k.isdigit() else None)


@dataclass
class RunRecord:
    """A trained and analysed run."""

    name: str
    role: RunRole
    analysis: RunAnalysis
    metrics: dict[str, Any]
    timing: dict[str, float]

    @property
    def n(self) -> int:
        """Number of classes (from the analysed model)."""
        return int(self.analysis.summary.get("num_classes", self.role.num_classes or 0))


# ------------------------------------------------------------------------------------------------------ claims
def dimension_measure(r: RunRecord) -> dict[str, Any]:
    """The manifold's dimension statistics of one run (what every dimension rule reads)."""
    s = r.analysis.summary
    man = s["manifold"]
    return {"participation_ratio": man["participation_ratio"], "readout_dimension": man["readout_dimension"],
            "n_points": man["n_points"], "num_classes": r.n}


def _details(r: RunRecord) -> dict[str, Any]:
    s = r.analysis.summary
    man, roots = s["manifold"], s.get("exact_roots", {})
    return {"run": r.name, "cell": r.role.cell, "num_classes": r.n, "test_accuracy": s.get("test_accuracy"),
            "chance_accuracy": s.get("chance_accuracy"), "n_manifold_points": man["n_points"],
            "readout_r2": man.get("readout_r2"), "dimension_95": man.get("dimension_95"),
            "explained_variance": man.get("explained_variance", [])[:6],
            "accuracy_by_dimension": man.get("accuracy_by_dimension"), "levina_bickel": man.get("levina_bickel"),
            "n_exact_roots": roots.get("n"), "exact_root_stability": roots.get("stability"),
            "exact_root_pca_dimension_95": ((roots.get("pca") or {}).get("dimensions") or {}).get("0.95"),
            "wordcount_participation_ratio": s["wordcount"]["participation_ratio"],
            "all_states_participation_ratio": (s["states"]["pca"] or {}).get("participation_ratio")}


def categorical_rule(m: dict[str, Any], k: int) -> bool:
    """``|PR − k| ≤ 0.75`` and ``d_read = k`` (k = N − 1 for N categorical classes; 1 for scalar evidence).

    >>> categorical_rule({"participation_ratio": 2.4, "readout_dimension": 2}, 2)
    True
    >>> categorical_rule({"participation_ratio": 2.8, "readout_dimension": 2}, 2)
    False
    """
    pr = m.get("participation_ratio")
    return pr is not None and abs(pr - k) <= PR_TOL and m.get("readout_dimension") == k


def ordered_rule(m: dict[str, Any], n: int) -> bool:
    """``PR ≤ N − 1.5`` and ``d_read ≤ N − 2`` for N ordered classes.

    >>> ordered_rule({"participation_ratio": 2.4, "readout_dimension": 2}, 5)
    True
    >>> ordered_rule({"participation_ratio": 3.6, "readout_dimension": 2}, 5)
    False
    """
    pr, d = m.get("participation_ratio"), m.get("readout_dimension")
    return pr is not None and d is not None and pr <= n - T.ordered_pr_margin and d <= n - T.ordered_dread_margin


def _fig(r: RunRecord, kind: str) -> str | None:
    name = f"{kind}__{r.name}"
    return f"figures/{name}.png" if name in r.analysis.figures else None


def _no_runs(cid: str, statement: str, expected: str, what: str) -> Claim:
    return Claim(cid, statement, expected, None, None,
                 details={"explanation": f"not evaluated: the configuration has no {what} run"})


def grouped_claim(cid: str, statement: str, expected: str, groups: dict[str, list[RunRecord]], measure: Any,
                  check: Any, figure_kind: str = "pca3d", required: list[str] | None = None,
                  extra: dict[str, Any] | None = None) -> Claim:
    """A claim checked on every run of every group (a dataset); passes when every run passes, every group ran at
    least two cell types, and every ``required`` group ran."""
    runs = [r for g in groups.values() for r in g]
    if not runs:
        return _no_runs(cid, statement, expected, " or ".join(required or list(groups)) or cid)
    measured, per_run, problems = {}, {}, []
    for g, rs in groups.items():
        cells = sorted({r.role.cell for r in rs})
        if rs and len(cells) < MIN_CELL_TYPES:
            problems.append(f"{g}: only {len(cells)} cell type(s) ({', '.join(cells)}); needs {MIN_CELL_TYPES}")
        for r in rs:
            m = measure(r)
            ok = m is not None and bool(check(r, m))
            measured[r.name] = m
            per_run[r.name] = {"group": g, "measured": m, "passed": ok, **_details(r)}
            if not ok:
                problems.append(f"{r.name} fails the rule (runs.{r.name}.measured)")
    problems += [f"{g}: no run in the configuration" for g in (required or []) if not groups.get(g)]
    details: dict[str, Any] = {"runs": per_run, "groups": {g: [r.name for r in rs] for g, rs in groups.items()},
                               **(extra or {})}
    if problems:
        details["explanation"] = "; ".join(problems)
    return Claim(cid, statement, expected, measured, not problems, figure=_fig(runs[0], figure_kind),
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


def _by_n(runs: list[RunRecord], prefix: str = "") -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for r in runs:
        out.setdefault(f"{prefix or r.role.family}{r.n}", []).append(r)
    return out


def categorical_claims(runs: list[RunRecord]) -> list[Claim]:
    """``categorical_dim_n{N}`` for N = 2..5 (plus any other N configured) and ``categorical3_triangle``."""
    claims = []
    groups = _by_n(runs, "categorical")
    for n in sorted({r.n for r in runs} | {2, 3, 4, 5}):
        g = f"categorical{n}"
        claims.append(grouped_claim(
            f"categorical_dim_n{n}", f"{n}-class categorical synthetic data give an {n - 1}-dimensional manifold",
            f"|PR − {n - 1}| <= {PR_TOL} and d_read == {n - 1}, for each of >= {MIN_CELL_TYPES} cell types",
            {g: groups.get(g, [])}, dimension_measure, lambda r, m: categorical_rule(m, r.n - 1), required=[g]))

    def angles(r: RunRecord) -> list[float] | None:
        ro = r.analysis.summary.get("readout")
        return None if ro is None else ro["pair_angles"]

    claims.append(grouped_claim(
        "categorical3_triangle", "3 classes give an equilateral triangle: the readouts sit 120° apart",
        f"every pairwise readout angle within {TRIANGLE_MAX_DEVIATION_DEG:g}° of 120°, for each of >= "
        f"{MIN_CELL_TYPES} cell types", {"categorical3": groups.get("categorical3", [])}, angles,
        lambda r, m: max(abs(a - 120.0) for a in m) <= TRIANGLE_MAX_DEVIATION_DEG, "readout",
        required=["categorical3"]))
    return claims


def natural_categorical_claim(fam: dict[str, list[RunRecord]], required: list[str]) -> Claim:
    """``natural_categorical_dim``: AG News and DBPedia k-class subsets, the categorical rule per run."""
    groups = _by_n([r for c in CATEGORICAL_CORPORA for r in fam.get(c, [])])
    return grouped_claim(
        "natural_categorical_dim", "Categorical corpora with N classes give an (N−1)-dimensional manifold",
        f"|PR − (N−1)| <= {PR_TOL} and d_read == N − 1 on every run of {', '.join(required)}, each with >= "
        f"{MIN_CELL_TYPES} cell types", groups, dimension_measure, lambda r, m: categorical_rule(m, r.n - 1),
        required=required)


def ordered_claims(fam: dict[str, list[RunRecord]]) -> list[Claim]:
    """``ordered_reduces_dim`` (synthetic), ``sst5_reduces_dim`` (SST-5) and ``scalar_evidence_1d``."""
    rule = f"PR <= N − {T.ordered_pr_margin:g} and d_read <= N − {T.ordered_dread_margin}"
    ordered = _by_n(fam.get("ordered", []), "ordered")
    return [
        grouped_claim("ordered_reduces_dim", "Ordered classes (5-class synthetic, awesome..awful, uniform scores) "
                      "give a manifold of lower dimension than N − 1", f"{rule}, for each of >= {MIN_CELL_TYPES} "
                      "cell types", ordered, dimension_measure, lambda r, m: ordered_rule(m, r.n),
                      required=["ordered5"], extra={"co_author": COAUTHOR_ORDERED_DIM}),
        grouped_claim("sst5_reduces_dim", "5-class ordered reviews (SST-5) give a manifold of lower dimension than "
                      "N − 1", f"{rule}, for each of >= {MIN_CELL_TYPES} cell types", {"sst5": fam.get("sst5", [])},
                      dimension_measure, lambda r, m: ordered_rule(m, r.n), required=["sst5"],
                      extra={"co_author": COAUTHOR_ORDERED_DIM}),
        grouped_claim("scalar_evidence_1d", "Ordered classes whose evidence is one scalar give a 1-D manifold",
                      f"|PR − 1| <= {PR_TOL} and d_read == 1, for each of >= {MIN_CELL_TYPES} cell types",
                      {"scalar": fam.get("scalar", [])}, dimension_measure, lambda r, m: categorical_rule(m, 1),
                      required=["scalar"]),
    ]


def slow_modes_claim(fam: dict[str, list[RunRecord]]) -> Claim:
    """``slow_modes_match_dim``: median number of modes with τ ≥ the mean document length == N − 1."""
    runs = fam.get("categorical", []) + [r for c in CATEGORICAL_CORPORA for r in fam.get(c, [])]

    def measure(r: RunRecord) -> dict[str, Any] | None:
        lin = r.analysis.summary.get("linearization")
        if lin is None:
            return None
        return {"median_slow_modes": lin["slow_modes"]["median"], "counts": lin["slow_modes"]["counts"],
                "mean_document_length": lin["slow_modes"]["length"], "num_classes": r.n}

    return grouped_claim(
        "slow_modes_match_dim", "Categorical runs have N − 1 integrating (slow) modes along the manifold",
        "median over manifold points of #modes with τ = −1/log|λ| >= the mean document length == N − 1, on each "
        f"categorical run, each dataset with >= {MIN_CELL_TYPES} cell types", _by_n(runs), measure,
        lambda r, m: m["median_slow_modes"] == r.n - 1, "eigenvalues")


def wordcount_claim(fam: dict[str, list[RunRecord]]) -> Claim:
    """``wordcount_predicts``: PR of the class × word matrix within 0.75 of the manifold's, and ordered < categorical
    with the same N on both sides."""
    st = "The word-count matrix predicts the manifold's participation ratio, ordered below categorical"
    ex = (f"|PR_words − PR_rnn| <= {T.wordcount_pr_tolerance} on every run, and for every ordered run and every "
          "categorical run with the same N: PR_rnn(ordered) < PR_rnn(categorical) and PR_words(ordered) < "
          "PR_words(categorical)")
    cat = fam.get("categorical", []) + [r for c in CATEGORICAL_CORPORA for r in fam.get(c, [])]
    ordd = [r for f in ORDERED_FAMILIES for r in fam.get(f, [])]
    if not cat + ordd:
        return _no_runs("wordcount_predicts", st, ex, "categorical or ordered")

    def prs(r: RunRecord) -> tuple[float | None, float]:
        return r.analysis.summary["manifold"]["participation_ratio"], r.analysis.summary["wordcount"][
            "participation_ratio"]

    per, problems = {}, []
    for r in cat + ordd:
        pr, pw = prs(r)
        ok = pr is not None and abs(pw - pr) <= T.wordcount_pr_tolerance
        per[r.name] = {"pr_rnn": pr, "pr_words": pw, "passed": ok}
        if not ok:
            problems.append(f"{r.name}: |PR_words − PR_rnn| = {'n/a' if pr is None else round(abs(pw - pr), 3)}")
    pairs = {}
    for o in ordd:
        for c in (c for c in cat if c.n == o.n):
            (po, wo), (pc, wc) = prs(o), prs(c)
            ok = po is not None and pc is not None and po < pc and wo < wc
            pairs[f"{o.name} < {c.name}"] = {"pr_rnn": [po, pc], "pr_words": [wo, wc], "passed": ok}
            if not ok:
                problems.append(f"{o.name} vs {c.name}: ordered PR not below categorical")
    if not pairs:
        problems.append("no ordered run has a categorical run with the same N")
    det: dict[str, Any] = {"runs": per, "pairs": pairs}
    if problems:
        det["explanation"] = "; ".join(problems)
    return Claim("wordcount_predicts", st, ex, {"runs": per, "pairs": {k: v["passed"] for k, v in pairs.items()}},
                 not problems, figure="figures/dimension.png", details=det)


def line_attractor_measure(r: RunRecord) -> dict[str, Any] | None:
    """The five parts of ``line_attractor_binary`` for one run (None without a line-attractor analysis)."""
    la = r.analysis.summary.get("line_attractor")
    if la is None:
        return None
    return {**dimension_measure(r), **{k: la[k] for k in (
        "readout_alignment", "right_eigvec_alignment", "right_eigvec_null_p99", "tau_slowest", "tau_second",
        "tau_ratio", "mean_document_length", "valence_auc")}}


def line_attractor_parts(m: dict[str, Any]) -> dict[str, bool]:
    """Each part (i)-(v) of the line-attractor rule on one run's measurements.

    >>> m = {"participation_ratio": 1.2, "readout_dimension": 1, "readout_alignment": 0.9,
    ...      "right_eigvec_alignment": 0.8, "right_eigvec_null_p99": 0.2, "tau_slowest": 300.0, "tau_second": 20.0,
    ...      "tau_ratio": 15.0, "mean_document_length": 20.0, "valence_auc": 0.85}
    >>> all(line_attractor_parts(m).values()), line_attractor_parts({**m, "tau_second": 150.0})["iv_time_constants"]
    (True, False)
    """
    return {"i_dimension": categorical_rule(m, 1),
            "ii_readout_alignment": m["readout_alignment"] >= T.line_alignment_min,
            "iii_right_eigvec": m["right_eigvec_alignment"] > m["right_eigvec_null_p99"],
            "iv_time_constants": (m["tau_slowest"] >= m["mean_document_length"]
                                  and m["tau_slowest"] >= T.tau_ratio_min * m["tau_second"]),
            "v_valence": m["valence_auc"] >= T.valence_auc_min}


def line_attractor_claim(fam: dict[str, list[RunRecord]]) -> Claim:
    """``line_attractor_binary`` on the binary sentiment runs."""
    groups = {c: fam[c] for c in BINARY_CORPORA if fam.get(c)}

    def measure(r: RunRecord) -> dict[str, Any] | None:
        m = line_attractor_measure(r)
        return None if m is None else {**m, "parts": line_attractor_parts(m)}

    return grouped_claim(
        "line_attractor_binary", "Binary sentiment networks integrate along a line attractor",
        f"(i) |PR − 1| <= {PR_TOL} and d_read == 1; (ii) |cos(m, w)| >= {T.line_alignment_min}; (iii) median "
        f"|cos(r₁, m)| > the {T.null_quantile:.0%} quantile for random unit vectors; (iv) median slowest τ >= the "
        f"mean document length and >= {T.tau_ratio_min:g} × the second slowest; (v) valence AUC >= "
        f"{T.valence_auc_min}; on every binary run, >= {MIN_CELL_TYPES} cell types per dataset", groups, measure,
        lambda r, m: all(m["parts"].values()), "eigenvalues", required=["yelp_polarity", "sst2"])


def check_claims(records: dict[str, RunRecord], required_natural: list[str] | None = None) -> list[Claim]:
    """Every claim, from the analysed runs."""
    fam: dict[str, list[RunRecord]] = {}
    for r in records.values():
        fam.setdefault(r.role.family, []).append(r)
    claims = flipflop_claims(fam.get("flipflop", []))
    claims += categorical_claims(fam.get("categorical", []))
    claims.append(natural_categorical_claim(fam, required_natural or ["ag_news4", "dbpedia3", "dbpedia4"]))
    claims += ordered_claims(fam)
    claims.append(slow_modes_claim(fam))
    claims.append(wordcount_claim(fam))
    claims.append(line_attractor_claim(fam))
    return claims
