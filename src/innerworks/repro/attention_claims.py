"""The claims of ``repro attention`` (issue 13): rules, thresholds and sources, checked on analysed runs.

Each claim reads the summaries that :func:`innerworks.attention.analyze.summarize_analysis` (and
:func:`~innerworks.attention.analyze.row_metrics`) write; run names are ``<task>_<arch>`` (``one_to_one_aed``,
``escan_ao``, ``translation_aed``...). A claim whose runs are not in the settings is reported with ``passed: null``.
The rules and thresholds were fixed by the issue owner before measuring; they are never tuned to the results.

Definitions the claims share (also in ``docs/attention.md`` §5):

- **input-driven total**: the sum of the head-averaged dot ratios of the five terms with a χ part
  (:data:`~innerworks.attention.analyze.INPUT_DRIVEN_TERMS`). Per row: the row's dot ratios averaged over its valid
  decoder steps, summed over those terms, averaged over heads. The bootstrap resamples these per-row values.
- **temporal share**: the head-averaged dot ratio of μE·μD (top-5 aligned positions).
- **average-attention match**: ``1 - TV``, where TV is the total-variation distance ``0.5 Σ_t |ᾱ[s,t] - α_n[s,t]|``
  between the dataset-average attention ``ᾱ`` and each sample's attention ``α_n``, averaged over every valid (row,
  decoder step) and over heads (1 = every sample attends exactly like the average).

>>> THRESHOLDS.accuracy_min, SOURCES["one_to_one_*"][0].value
(0.99, 'paper')
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from innerworks.attention.analyze import INPUT_DRIVEN_TERMS, RunAnalysis
from innerworks.attention.metrics import compare_lag_to_offset, correlation
from innerworks.repro.claims import Claim, Source, Thresholds

THRESHOLDS = Thresholds(
    accuracy_min=(0.99, "issue: '>= 99%' phrase accuracy on one-to-one (notes' dev run: 100%)"),
    mumu_min=(0.7, "issue: μE·μD dominates with a dot ratio > 0.7 (dev run 0.80)"),
    diagonal_min=(0.9, "temporal-only attention peaks at t = s; 10% slack for the last, ragged steps"),
    bootstrap_level=(0.95, "issue 13: the 95% bootstrap interval of the difference lies above 0"),
    bootstrap_resamples=(2000, "enough resamples for stable 2.5%/97.5% percentiles; fixed before measuring"),
    bootstrap_seed=(0, "a fixed seed, so the interval is reproducible"),
    lag_pearson_min=(0.8, "issue 13: r(temporal lag, mean offset) >= 0.8 (dev offsets 0.3 -> 3.1)"),
    lag_mean_abs_diff_max=(1.0, "issue 13: an integer argmax allows rounding plus occasional one-step misses"),
    alignment_pearson_min=(0.5, "issue 13: r(temporal-only argmax, sample argmax) >= 0.5 on En->Fr"),
    share_match_spearman_min=(0.6, "issue 13: Spearman ρ(average-attention match, temporal share) >= 0.6"),
    share_match_min_points=(6, "issue 13: at least one-to-one, eSCAN, translation x AED, AO"),
    input_share_factor=(2.0, "extension: the input-driven share is 'much larger' than on one-to-one"),
)
T = THRESHOLDS

PAPER = "NeurIPS 2021 abstract and summaries"
SOURCES: dict[str, tuple[Source, str]] = {
    "*_transformer": (Source.EXTENSION, "transformers are not in the paper; unchanged rules on the last "
                                        "cross-attention"),
    "escan_ao_vs_aed_chiE_muD": (Source.EXTENSION, "no term-share number is confirmed; a diagnostic, no threshold"),
    "sort_input_share_*": (Source.EXTENSION, "no sorting task is confirmed in the paper"),
    "one_to_one_*": (Source.PAPER, PAPER),
    "escan_input_correction_*": (Source.PAPER, f"{PAPER}: eSCAN's off-diagonal shifts"),
    "escan_lag_follows_offset_*": (Source.PAPER, "NeurIPS 2021: temporal-offset analysis of eSCAN"),
    "translation_input_correction_*": (Source.PAPER, f"{PAPER}: En->Fr translation"),
    "translation_lag_follows_alignment_*": (Source.PAPER, "NeurIPS 2021: temporal-offset analysis of translation"),
    "temporal_share_tracks_average_match": (Source.PAPER, "NeurIPS 2021 abstract, contribution 2"),
}
PAPER_ARCHS = ("aed", "ao")
SHARE_MATCH_TASKS = ("one_to_one", "escan", "translation", "sort")
NOTES = "shared/papers/attention.md"


# ---------------------------------------------------------------------------------------------------- statistics
def bootstrap_mean_difference(a: Sequence[float], b: Sequence[float], level: float = T.bootstrap_level,
                              resamples: int = T.bootstrap_resamples,
                              seed: int = T.bootstrap_seed) -> dict[str, float]:
    """Percentile bootstrap of ``mean(a) - mean(b)`` for two independent samples (rows resampled with
    replacement, each sample on its own): the point difference and the ``level`` interval.

    >>> r = bootstrap_mean_difference([1.0, 1.1, 0.9, 1.0], [0.0, 0.1, -0.1, 0.0])
    >>> round(r["difference"], 3), r["low"] > 0.8, r["high"] < 1.2
    (1.0, True, True)
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return {"difference": math.nan, "low": math.nan, "high": math.nan, "n_a": int(x.size), "n_b": int(y.size)}
    rng = np.random.default_rng(int(seed))
    bx = x[rng.integers(0, x.size, (int(resamples), x.size))].mean(1)
    by = y[rng.integers(0, y.size, (int(resamples), y.size))].mean(1)
    lo, hi = np.quantile(bx - by, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": float(x.mean() - y.mean()), "low": float(lo), "high": float(hi),
            "level": float(level), "resamples": int(resamples), "n_a": int(x.size), "n_b": int(y.size)}


def full_support_steps(step_counts: Sequence[int] | None, n_rows: int) -> int:
    """How many leading decoder steps every analysed row reaches (``step_counts[s] == n_rows``).

    >>> full_support_steps([5, 5, 5, 3, 1], 5)
    3
    """
    n = 0
    for c in step_counts or []:
        if int(c) != int(n_rows):
            break
        n += 1
    return n


# ---------------------------------------------------------------------------------------------------- helpers
def _acc(r: RunAnalysis | None) -> float | None:
    return None if r is None else r.metrics.get("phrase_accuracy")


def _fig(figs: Collection[str], name: str) -> str | None:
    return f"figures/{name}.png" if name in figs else None


def _missing(cid: str, statement: str, expected: str, names: list[str]) -> Claim:
    return Claim(cid, statement, expected, None, None, None,
                 {"explanation": f"not evaluated: run(s) {', '.join(names)} are not in this configuration"})


def _no_attention(cid: str, statement: str, expected: str, name: str) -> Claim:
    return Claim(cid, statement, expected, None, None, None, {"explanation": f"{name} has no attention"})


def _attn(runs: dict[str, RunAnalysis], name: str) -> dict[str, Any] | None:
    r = runs.get(name)
    return r.summary if r is not None and r.summary.get("has_attention") else None


def _two_runs(runs: dict[str, RunAnalysis], text: tuple[str, str, str], name: str,
              base: str) -> Claim | tuple[dict[str, Any], dict[str, Any]]:
    """The attention summaries of runs ``name`` and ``base``, or the not-evaluated claim (``text`` is its id,
    statement and expected rule) when one is missing or has no attention."""
    need = [n for n in (name, base) if n not in runs]
    if need:
        return _missing(*text, need)
    s, b = _attn(runs, name), _attn(runs, base)
    if s is None or b is None:
        return _no_attention(*text, name if s is None else base)
    return s, b


def _fail(details: dict[str, Any], ok: bool, why: str) -> None:
    if not ok:
        details["explanation"] = why


# -------------------------------------------------------------------------------------------------- paper claims
def accuracy_claim(runs: dict[str, RunAnalysis], archs: tuple[str, ...], cid: str, figs: Collection[str] = ()) -> Claim:
    """Test phrase accuracy >= ``accuracy_min`` for each one-to-one run of ``archs``."""
    names = [f"one_to_one_{a}" for a in archs]
    who = ", ".join(a.upper() if a != "transformer" else "the transformer" for a in archs)
    statement = f"On one-to-one translation {who} reach >= 99% phrase accuracy"
    expected = f"test phrase accuracy (greedy decoding) >= {T.accuracy_min} for each of {who}"
    missing = [n for n in names if n not in runs]
    if missing:
        return _missing(cid, statement, expected, missing)
    measured = {a: _acc(runs[n]) for a, n in zip(archs, names, strict=True)}
    ok = all(v is not None and v >= T.accuracy_min for v in measured.values())
    details: dict[str, Any] = {"source": f"issue text; {NOTES} §5 (dev run: 100% for VED, AO and AED)",
                               "word_accuracy": {a: runs[n].metrics.get("word_accuracy")
                                                 for a, n in zip(archs, names, strict=True)}}
    _fail(details, ok, "below the threshold: " + ", ".join(
        f"{a} {v}" for a, v in measured.items() if v is None or v < T.accuracy_min))
    return Claim(cid, statement, expected, measured, ok, _fig(figs, "accuracy__runs"), details)


def temporal_claim(runs: dict[str, RunAnalysis], arch: str, figs: Collection[str] = ()) -> Claim:
    """One-to-one: μE·μD has the largest dot ratio and > ``mumu_min``, and the temporal-only attention is diagonal
    (argmax at ``t = s`` on >= ``diagonal_min`` of the (head, step) pairs reached)."""
    name, cid = f"one_to_one_{arch}", f"one_to_one_temporal_{arch}"
    statement = (f"{arch.upper()} on one-to-one: the temporal term μE·μD dominates the attention scores and the "
                 "temporal-only attention softmax(μD·μE) is diagonal")
    expected = (f"μE·μD has the largest dot ratio of the nine terms (top-5, head-averaged) and it is > {T.mumu_min}; "
                f"argmax_t softmax_t(μD_s·μE_t) == s on >= {T.diagonal_min:.0%} of the decoder steps reached")
    if name not in runs:
        return _missing(cid, statement, expected, [name])
    s = _attn(runs, name)
    if s is None:
        return _no_attention(cid, statement, expected, name)
    mumu, diag, top = s["dot_ratios"]["muE_muD"], s["temporal_diagonal_fraction"], s["largest_dot_ratio_term"]
    dominant = top == "muE_muD" and mumu > T.mumu_min
    diagonal = diag >= T.diagonal_min
    details: dict[str, Any] = {"source": f"issue text; {NOTES} §5 (dev run dot ratio 0.80; '[inferred] sharply "
                                         "diagonal')",
                               "dot_ratios": s["dot_ratios"], "largest_term": top,
                               "temporal_lag_per_step": s["temporal_lag"], "phrase_accuracy": _acc(runs[name])}
    _fail(details, dominant and diagonal, "; ".join(
        ([] if dominant else [f"largest term {top}, μE·μD {mumu:.3f} (need largest and > {T.mumu_min})"]) +
        ([] if diagonal else [f"diagonal fraction {diag:.3f} < {T.diagonal_min}"])))
    return Claim(cid, statement, expected, {"muE_muD": mumu, "largest_term": top, "diagonal_fraction": diag},
                 dominant and diagonal, _fig(figs, f"attention__{name}"), details)


def input_correction_claim(runs: dict[str, RunAnalysis], task: str, arch: str,
                           figs: Collection[str] = ()) -> Claim:
    """On ``task`` (eSCAN, translation): μE·μD is still the largest dot ratio, and the input-driven total is larger
    than on one-to-one: the bootstrap interval (over test rows) of the difference of the per-row means lies above 0."""
    name, base = f"{task}_{arch}", f"one_to_one_{arch}"
    what = "eSCAN" if task == "escan" else "En→Fr translation"
    cid = f"{task}_input_correction_{arch}"
    statement = (f"{arch.upper()} on {what}: the temporal term still dominates, and input-driven terms correct it "
                 "more than on one-to-one")
    expected = (f"μE·μD has the largest dot ratio, and the {T.bootstrap_level:.0%} bootstrap interval (over test rows) "
                f"of input-driven total({task}) − input-driven total(one-to-one) lies above 0")
    pair = _two_runs(runs, (cid, statement, expected), name, base)
    if isinstance(pair, Claim):
        return pair
    s, b = pair
    rows, base_rows = s.get("per_row", {}).get("input_driven"), b.get("per_row", {}).get("input_driven")
    if not rows or not base_rows:
        return Claim(cid, statement, expected, None, None, None, {"explanation": "no per-row input-driven totals"})
    boot = bootstrap_mean_difference(rows, base_rows)
    top = s["largest_dot_ratio_term"]
    ok = top == "muE_muD" and boot["low"] > 0
    details: dict[str, Any] = {
        "source": f"issue 13; {NOTES} §0 ('depending on the task, networks rely more on the temporal or on the "
                  "input-driven components')",
        "definition": "input-driven total per row: the row's dot ratios (top-5, averaged over its valid decoder "
                      f"steps, head-averaged) summed over {', '.join(INPUT_DRIVEN_TERMS)}; the difference of the "
                      "two runs' row means, rows of each run resampled independently",
        "bootstrap": boot, "dot_ratios": {task: s["dot_ratios"], "one_to_one": b["dot_ratios"]},
        "input_driven_dot_ratio": {task: s["input_driven_dot_ratio"], "one_to_one": b["input_driven_dot_ratio"]},
        "phrase_accuracy": {task: _acc(runs[name]), "one_to_one": _acc(runs[base])}}
    if "bleu" in runs[name].metrics:
        details["bleu"] = runs[name].metrics["bleu"]
    _fail(details, ok, "; ".join(([] if top == "muE_muD" else [f"largest dot ratio is {top}"]) +
                                 ([] if boot["low"] > 0 else [f"interval [{boot['low']:.4f}, {boot['high']:.4f}] "
                                                              "does not lie above 0"])))
    measured = {"largest_term": top, "muE_muD": s["dot_ratios"]["muE_muD"],
                "input_driven": float(np.mean(rows)), "input_driven_one_to_one": float(np.mean(base_rows)),
                "difference": boot["difference"], "interval": [boot["low"], boot["high"]]}
    return Claim(cid, statement, expected, measured, ok, _fig(figs, f"term_shares_by_arch__{task}"), details)


def lag_claim(runs: dict[str, RunAnalysis], arch: str, figs: Collection[str] = (), full_support: bool = True) -> Claim:
    """eSCAN: the temporal argmax lag follows the data's mean offset (Pearson and mean absolute difference), over
    the decoder steps every analysed row reaches (``full_support``; the transformer's extension claim keeps the
    earlier rule: every step reached by at least one row)."""
    name, cid = f"escan_{arch}", f"escan_lag_follows_offset_{arch}"
    statement = f"{arch.upper()} on eSCAN: the temporal argmax lag follows the data's mean encoder-decoder offset"
    steps = "the decoder steps that every analysed row reaches" if full_support else "every decoder step reached"
    expected = (f"Pearson r(lag, offset) >= {T.lag_pearson_min} and mean |lag - offset| <= "
                f"{T.lag_mean_abs_diff_max:g} step over {steps} (head-averaged lag)")
    if name not in runs:
        return _missing(cid, statement, expected, [name])
    s, offset = _attn(runs, name), runs[name].offset
    if s is None or offset is None:
        return Claim(cid, statement, expected, None, None, None, {"explanation": f"{name}: no lag/offset measured"})
    lag = s["temporal_lag"]
    n = full_support_steps(s.get("step_counts"), s["n_sequences"]) if full_support else min(len(lag), len(offset))
    cmp = compare_lag_to_offset(lag[:n], offset[:n]) if n >= 2 else {"pearson": math.nan, "mean_abs_diff": math.nan}
    r, mad = cmp["pearson"], cmp["mean_abs_diff"]
    ok = bool(math.isfinite(r) and r >= T.lag_pearson_min and mad <= T.lag_mean_abs_diff_max)
    details: dict[str, Any] = {
        "source": f"issue 13; {NOTES} §5 (the lag 'roughly follows the dataset's average offset', 0.3 -> 3.1)",
        "steps_compared": n, "lag": lag, "offset": offset, "comparison": cmp,
        "all_steps_comparison": s.get("lag_vs_offset"),  # diagnostic: the earlier rule
        "attention_lag": s.get("attention_lag"), "step_counts": s.get("step_counts"),
        "phrase_accuracy": _acc(runs[name])}
    _fail(details, ok, f"r = {r} (need >= {T.lag_pearson_min}), mean |diff| = {mad} (need <= "
                       f"{T.lag_mean_abs_diff_max:g})")
    return Claim(cid, statement, expected, {"pearson": r, "mean_abs_diff": mad, "steps": n}, ok,
                 _fig(figs, f"lag__{name}"), details)


def alignment_claim(runs: dict[str, RunAnalysis], arch: str, figs: Collection[str] = ()) -> Claim:
    """En→Fr: Pearson r between the temporal-only attention's argmax and each sample attention's argmax, pooled
    over every valid (row, decoder step) and averaged over heads, >= ``alignment_pearson_min``."""
    name, cid = f"translation_{arch}", f"translation_lag_follows_alignment_{arch}"
    statement = f"{arch.upper()} on En→Fr: the temporal-only attention follows where each sample attends"
    expected = (f"Pearson r(argmax_t softmax_t(μD_s·μE_t), argmax_t α_n[s, t]) >= {T.alignment_pearson_min}, "
                "over every valid (test row, decoder step) pair (head-averaged r)")
    if name not in runs:
        return _missing(cid, statement, expected, [name])
    s = _attn(runs, name)
    if s is None:
        return _no_attention(cid, statement, expected, name)
    al = s.get("argmax_alignment")
    if not al:
        return Claim(cid, statement, expected, None, None, None, {"explanation": "no argmax alignment measured"})
    r = al["pearson"]
    ok = bool(r is not None and math.isfinite(r) and r >= T.alignment_pearson_min)
    details: dict[str, Any] = {"source": f"issue 13; {NOTES} §0 (translation: close-to-diagonal attention with "
                                         "off-diagonal shifts, studied through a temporal-offset analysis)",
                               "argmax_alignment": al, "temporal_lag": s["temporal_lag"],
                               "attention_lag": s.get("attention_lag"), "phrase_accuracy": _acc(runs[name]),
                               "bleu": runs[name].metrics.get("bleu")}
    _fail(details, ok, f"r = {r} < {T.alignment_pearson_min}")
    return Claim(cid, statement, expected, {"pearson": r, "pairs": al.get("n")}, ok, _fig(figs, f"attention__{name}"),
                 details)


def share_match_points(runs: dict[str, RunAnalysis], archs: Sequence[str] = PAPER_ARCHS) -> dict[str, list[float]]:
    """``{run: [average-attention match, temporal share]}`` of the attention runs of :data:`SHARE_MATCH_TASKS` x
    ``archs``."""
    out = {}
    for task in SHARE_MATCH_TASKS:
        for arch in archs:
            s = _attn(runs, f"{task}_{arch}")
            if s is not None and s.get("average_attention_match") is not None:
                out[f"{task}_{arch}"] = [s["average_attention_match"], s["temporal_share"]]
    return out


def _share_match_corr(pts: dict[str, list[float]]) -> dict[str, float]:
    return correlation([p[0] for p in pts.values()], [p[1] for p in pts.values()])


def share_match_claim(runs: dict[str, RunAnalysis], figs: Collection[str] = ()) -> Claim:
    """Across (task, AED/AO) runs: Spearman ρ(average-attention match, temporal share) >= the threshold, on at least
    ``share_match_min_points`` runs."""
    cid = "temporal_share_tracks_average_match"
    statement = ("The better the dataset-average attention matches each sample's attention, the larger the temporal "
                 "components' share")
    expected = (f"Spearman ρ(average-attention match, temporal share) >= {T.share_match_spearman_min} across the "
                f"(task, architecture) runs, AED and AO on one-to-one, eSCAN, translation (sort if run), "
                f">= {T.share_match_min_points} runs")
    pts = share_match_points(runs)
    if len(pts) < T.share_match_min_points:
        return Claim(cid, statement, expected, {"runs": len(pts)}, None, None,
                     {"explanation": f"not evaluated: {len(pts)} runs < {T.share_match_min_points}", "points": pts})
    c = _share_match_corr(pts)
    rho = c["spearman"]
    ok = bool(math.isfinite(rho) and rho >= T.share_match_spearman_min)
    details: dict[str, Any] = {
        "source": f"{NOTES} §0 and contribution 2 ('the temporal (input) components play a larger role ... as the "
                  "average attention matrix becomes a better (worse) approximation')",
        "definition": "average-attention match = 1 − mean TV(dataset-average attention, sample attention) over valid "
                      "(row, step), head-averaged; temporal share = head-averaged μE·μD dot ratio (top-5)",
        "points": pts, "pearson": c["pearson"],
        "with_transformer": _share_match_corr(share_match_points(runs, (*PAPER_ARCHS, "transformer")))}
    _fail(details, ok, f"ρ = {rho} < {T.share_match_spearman_min}")
    return Claim(cid, statement, expected, {"spearman": rho, "runs": len(pts)}, ok,
                 _fig(figs, "share_vs_match__runs"), details)


# ------------------------------------------------------------------------------------------------- extensions
def chi_diagnostic(runs: dict[str, RunAnalysis], figs: Collection[str] = ()) -> Claim:
    """eSCAN: AO's and AED's χE·μD signed shares at the maximal alignment, and their ratio (no threshold)."""
    cid = "escan_ao_vs_aed_chiE_muD"
    statement = "On eSCAN, the encoder-input x decoder-temporal term χE·μD of AO and AED (diagnostic)"
    expected = "reported only: no confirmed number (the notes' 0.109 vs 0.010 is one development run)"
    need = [n for n in ("escan_ao", "escan_aed") if _attn(runs, n) is None]
    if need:
        return _missing(cid, statement, expected, need)
    ao, aed = (runs[f"escan_{a}"].summary["signed_shares"]["chiE_muD"] for a in ("ao", "aed"))
    ratio = ao / abs(aed) if aed != 0 else None
    details = {"explanation": "a diagnostic with no threshold (issue 13): passed is null by design",
               "dot_ratio_chiE_muD": {a: runs[f"escan_{a}"].summary["dot_ratios"]["chiE_muD"] for a in ("ao", "aed")},
               "chiE_muD_by_key_token": {a: runs[f"escan_{a}"].summary.get("signed_shares_by_key_token", {})
                                         .get("chiE_muD") for a in ("ao", "aed")}}
    return Claim(cid, statement, expected, {"ao": ao, "aed": aed, "ratio": ratio}, None,
                 _fig(figs, "term_shares_by_arch__escan"), details)


def input_share_claim(runs: dict[str, RunAnalysis], task: str, arch: str, figs: Collection[str] = ()) -> Claim:
    """The input-driven dot-ratio share on ``task`` is at least ``input_share_factor`` x one-to-one's (sort)."""
    name, base, cid = f"{task}_{arch}", f"one_to_one_{arch}", f"{task}_input_share_{arch}"
    statement = (f"{arch.upper()}: input-driven terms carry a much larger share of the attention scores on {task} "
                 "than on one-to-one")
    expected = (f"input-driven dot-ratio share (sum over {', '.join(INPUT_DRIVEN_TERMS)}) on {task} >= "
                f"{T.input_share_factor:g} x its one-to-one value")
    pair = _two_runs(runs, (cid, statement, expected), name, base)
    if isinstance(pair, Claim):
        return pair
    s, b = pair
    v, w = s["input_driven_dot_ratio"], b["input_driven_dot_ratio"]
    ok = v >= T.input_share_factor * w
    details: dict[str, Any] = {"source": "issue text ('much larger')", "ratio": v / w if w > 0 else None}
    _fail(details, ok, f"{v:.4f} < {T.input_share_factor:g} x {w:.4f}")
    return Claim(cid, statement, expected, {task: v, "one_to_one": w}, ok, _fig(figs, f"input_share__{arch}"),
                 details)


def mumu_claim(runs: dict[str, RunAnalysis], arch: str, figs: Collection[str] = ()) -> Claim:
    """One-to-one: μE·μD has the largest dot ratio and > ``mumu_min`` (the transformer's unchanged rule)."""
    name, cid = f"one_to_one_{arch}", f"one_to_one_mumu_dominant_{arch}"
    statement = f"{arch} on one-to-one: the temporal term μE·μD dominates the attention scores"
    expected = f"μE·μD has the largest dot ratio of the nine terms (top-5, head-averaged) and it is > {T.mumu_min}"
    if name not in runs:
        return _missing(cid, statement, expected, [name])
    s = _attn(runs, name)
    if s is None:
        return _no_attention(cid, statement, expected, name)
    value, top = s["dot_ratios"]["muE_muD"], s["largest_dot_ratio_term"]
    ok = top == "muE_muD" and value > T.mumu_min
    details: dict[str, Any] = {"dot_ratios": s["dot_ratios"], "largest_term": top}
    _fail(details, ok, f"largest term {top}, μE·μD {value:.3f}")
    return Claim(cid, statement, expected, value, ok, _fig(figs, f"term_shares__{name}"), details)


def diagonal_claim(runs: dict[str, RunAnalysis], arch: str, figs: Collection[str] = ()) -> Claim:
    """One-to-one: the temporal-only attention peaks at ``t = s`` on >= ``diagonal_min`` of the (head, step)
    pairs (the transformer's unchanged rule)."""
    name, cid = f"one_to_one_{arch}", f"one_to_one_temporal_diagonal_{arch}"
    statement = f"{arch} on one-to-one: the temporal-only attention softmax(μD·μE) is diagonal"
    expected = f"argmax_t softmax_t(μD_s·μE_t) == s for >= {T.diagonal_min:.0%} of the decoder steps reached"
    if name not in runs:
        return _missing(cid, statement, expected, [name])
    s = _attn(runs, name)
    if s is None:
        return _no_attention(cid, statement, expected, name)
    value = s["temporal_diagonal_fraction"]
    ok = value >= T.diagonal_min
    details: dict[str, Any] = {"temporal_lag_per_step": s["temporal_lag"]}
    _fail(details, ok, f"off-diagonal at decoder steps {[i for i, v in enumerate(s['temporal_lag']) if v != 0]}")
    return Claim(cid, statement, expected, value, ok, _fig(figs, f"attention__{name}"), details)


def check_claims(runs: dict[str, RunAnalysis], figures: Collection[str] | None = None) -> list[Claim]:
    """Every claim of the module docstring, from analysed runs keyed by run name. ``figures`` are the figure names
    a claim may link to (default: the runs' own figures)."""
    figs = set(figures) if figures is not None else {f for r in runs.values() for f in r.figures}
    claims = [accuracy_claim(runs, ("ved", "aed", "ao"), "one_to_one_accuracy", figs)]
    claims += [temporal_claim(runs, a, figs) for a in PAPER_ARCHS]
    claims += [input_correction_claim(runs, "escan", a, figs) for a in PAPER_ARCHS]
    claims += [lag_claim(runs, a, figs) for a in PAPER_ARCHS]
    claims += [input_correction_claim(runs, "translation", a, figs) for a in PAPER_ARCHS]
    claims += [alignment_claim(runs, a, figs) for a in PAPER_ARCHS]
    claims += [share_match_claim(runs, figs), chi_diagnostic(runs, figs)]
    claims += [input_share_claim(runs, "sort", a, figs) for a in sorted({n[5:] for n in runs if n.startswith("sort_")}
                                                                         | {"aed"})]
    claims += [accuracy_claim(runs, ("transformer",), "one_to_one_accuracy_transformer", figs),
               mumu_claim(runs, "transformer", figs), diagonal_claim(runs, "transformer", figs)]
    if "escan_transformer" in runs:
        claims.append(lag_claim(runs, "transformer", figs, full_support=False))
    return claims


__all__ = ["SOURCES", "THRESHOLDS", "bootstrap_mean_difference", "check_claims", "full_support_steps",
           "share_match_points"]
