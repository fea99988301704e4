"""Analyse a trained sequence-to-sequence run: the temporal / input decomposition of its attention, as JSON + figures.

This is what ``innerworks analyze attention RUN_DIR --out DIR`` runs (and what ``repro attention`` runs on each of its
trained models):

1. :func:`innerworks.train.load_run` loads the model and rebuilds the data; the analysis uses the test split (the
   first ``n_eval`` rows when given) and greedy decoding, so ``chi^D`` is keyed by the previous *predicted* token.
2. :func:`innerworks.attention.decompose.decompose_attention` makes its two streaming passes over
   :func:`~innerworks.attention.decompose.model_cache_batches` (on eSCAN the data's mean offset per decoder step,
   :func:`innerworks.data.seq2seq.escan_offsets`, is compared with the temporal lag).
3. :func:`summarize_analysis` derives the numbers the claims read (head-averaged dot ratios, the input-driven share,
   the diagonal fraction of the temporal-only attention, lag vs offset).
4. ``analysis.json`` and the figures ``attention__NAME``, ``term_shares__NAME``, ``mu_pca__NAME`` (and ``lag__NAME``
   on eSCAN) are written.

Models without attention (VED) get the hidden-state decomposition only; the JSON says so (``has_attention: false``).
Multi-head models are decomposed head by head on the projected queries/keys; summaries average over heads
(``head_averaged: true``) and keep the per-head values.

>>> INPUT_DRIVEN_TERMS
('muE_chiD', 'chiE_muD', 'chiE_chiD', 'chiE_deltaD', 'deltaE_chiD')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from innerworks.attention.decompose import (
    AttentionAnalysis,
    VarianceReport,
    decompose_attention,
    model_cache_batches,
    to_plain,
)
from innerworks.attention.metrics import DotRatioAccumulator, compare_lag_to_offset, correlation
from innerworks.attention.scores import INPUT_TERMS, TERM_NAMES, attention_from_terms, reconstruct_scores, score_terms
from innerworks.errors import InnerworksError
from innerworks.models.hooks import HOOK_DEC_STATES, HOOK_DEC_TOKENS, HOOK_ENC_STATES, HOOK_K, HOOK_Q, HOOK_WEIGHTS
from innerworks.utils.io import write_json

INPUT_DRIVEN_TERMS: tuple[str, ...] = tuple(n for n in TERM_NAMES if "chi" in n)
"""Terms with an input-driven (``chi``) part on either side: their summed dot ratio is the input-driven share."""

REBUILD_TERMS: tuple[str, ...] = INPUT_TERMS
"""Terms the ``attention__`` figure rebuilds attention from: every temporal/input term, no residual."""

_NO_ATTENTION_NOTE = ("this model has no attention (VED): only the hidden-state decomposition (variance explained by "
                      "mu and chi, per-word variance ratio, per-step total variance and participation ratio) is "
                      "reported")


@dataclass
class RunAnalysis:
    """What :func:`analyze_model` returns.

    Attributes:
        name: run name (the recipe's ``name``). task / arch: data task and model architecture.
        metrics: the run's test metrics (``phrase_accuracy``...), when known.
        analysis: the full :class:`~innerworks.attention.decompose.AttentionAnalysis`.
        summary: :func:`summarize_analysis` (the numbers the claims read).
        offset: eSCAN's mean encoder-minus-decoder offset per decoder step on the analysed rows (else None).
        figures: figure names written (``figures/NAME.png``).
        json_path: where ``analysis.json`` was written (None when not written).
    """

    name: str
    task: str
    arch: str
    metrics: dict[str, Any]
    analysis: AttentionAnalysis
    summary: dict[str, Any]
    offset: list[float] | None = None
    figures: list[str] = field(default_factory=list)
    json_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``analysis.json`` document (plain JSON: NaN becomes null).

        >>> sorted(k for k in RunAnalysis.__dataclass_fields__)[:3]
        ['analysis', 'arch', 'figures']
        """
        return to_plain({"run": self.name, "task": self.task, "arch": self.arch, "metrics": self.metrics,
                          "summary": self.summary, "offset": self.offset, "figures": self.figures,
                          "analysis": self.analysis.to_dict()})


def _f(x: torch.Tensor | float) -> float:
    return float(x.mean()) if isinstance(x, torch.Tensor) else float(x)


def summarize_analysis(analysis: AttentionAnalysis, offset: torch.Tensor | list[float] | None = None,
                       src_vocab: Sequence[str] | None = None) -> dict[str, Any]:
    """The numbers the claims read, head-averaged (per-head values kept under ``per_head``).

    - ``dot_ratios`` / ``signed_shares``: per term, the mean over heads;
    - ``largest_dot_ratio_term``: the term with the largest head-averaged dot ratio;
    - ``input_driven_dot_ratio``: the summed dot ratio of :data:`INPUT_DRIVEN_TERMS`;
    - ``temporal_diagonal_fraction``: fraction of (head, decoder step) pairs whose temporal-only attention peaks at
      ``t = s`` (temporal lag 0), over the decoder steps the data reaches;
    - ``temporal_lag``: head-averaged lag per step; ``lag_vs_offset``: :func:`compare_lag_to_offset` of that lag
      against ``offset`` when given;
    - ``attention_lag`` / ``attention_lag_vs_offset``: the same for the lag of each sample's own attention
      (``argmax_t alpha[s, t] - s``, averaged over samples, then heads), a diagnostic of whether the network itself
      follows the offset at each step; ``step_counts``: samples valid at each decoder step, and
      ``eos_fraction_per_step``: the share of them for which that step is their ``<eos>`` step;
    - ``signed_shares_by_key_token``: per term, the head-averaged signed share split by the encoder token at the
      maximal alignment (token names from ``src_vocab`` when given, else ids; tokens never at a maximum left out);
    - hidden-state variance numbers for encoder and decoder (VED included);
    - ``temporal_share``: the head-averaged ``muE_muD`` dot ratio; ``average_attention_match``: ``1 - TV``, the
      total-variation distance between the dataset-average attention and each sample's attention averaged over
      valid (row, step) and heads (1: every sample attends like the average). Both are fixed definitions of the
      paper's "temporal components' role" and "how well the average attention matches a sample's attention".

    >>> import torch
    >>> from innerworks.attention.decompose import decompose_attention
    >>> g = torch.Generator().manual_seed(0)
    >>> e = torch.eye(4)[None].repeat(6, 1, 1) * 5 + 0.01 * torch.randn(6, 4, 4, generator=g)
    >>> b = {"encoder.hook_states": e, "decoder.hook_states": e.clone(), "src": torch.full((6, 4), 3),
    ...      "decoder.hook_tokens": torch.full((6, 4), 3), "src_lengths": torch.full((6,), 4),
    ...      "tgt_lengths": torch.full((6,), 4), "attn.hook_scores": e @ e.transpose(1, 2)}
    >>> s = summarize_analysis(decompose_attention([b]))
    >>> s["largest_dot_ratio_term"], s["temporal_diagonal_fraction"]
    ('muE_muD', 1.0)
    """
    out: dict[str, Any] = {"has_attention": analysis.n_heads > 0, "n_sequences": analysis.n_sequences,
                           "n_heads": analysis.n_heads, "head_averaged": True, "k": analysis.k,
                           "hidden_states": {"encoder": _variance_summary(analysis.encoder),
                                             "decoder": _variance_summary(analysis.decoder)}}
    if analysis.n_heads == 0:
        out["note"] = _NO_ATTENTION_NOTE
        return out
    out.update(_score_summary(analysis))
    out.update(_comparison_summary(analysis))
    out["temporal_share"] = out["dot_ratios"]["muE_muD"]
    mm = out.get("mean_attention_match")
    out["average_attention_match"] = None if mm is None else 1.0 - mm["tv"]
    out.update(_step_summary(analysis))
    if analysis.signed_shares_by_key_token is not None:
        out["signed_shares_by_key_token"] = _shares_by_key_token(analysis.signed_shares_by_key_token, src_vocab)
    if offset is not None:
        assert analysis.temporal_lag is not None
        off = torch.as_tensor(offset, dtype=torch.float64)
        out["lag_vs_offset"] = compare_lag_to_offset(analysis.temporal_lag.double().mean(0), off)
        if analysis.attention_lag is not None:
            out["attention_lag_vs_offset"] = compare_lag_to_offset(analysis.attention_lag.double().mean(0), off)
    return out


def _variance_summary(rep: VarianceReport) -> dict[str, Any]:
    """Head-averaged variance numbers of one side's hidden states."""
    pr = rep.step_participation_ratio
    return {"r2_mu": _f(rep.r2_mu), "r2_mu_chi": _f(rep.r2_mu_chi), "variance_ratio": _f(rep.variance_ratio),
            "total_variance": _f(rep.total_variance),
            "mean_participation_ratio": float(torch.nanmean(pr.double())) if pr is not None else None}


def _score_summary(analysis: AttentionAnalysis) -> dict[str, Any]:
    """Dot ratios, signed shares, the input-driven share, the temporal lag and the temporal-only attention's match
    (head-averaged, plus per head)."""
    assert analysis.dot_ratios is not None and analysis.signed_shares is not None
    assert analysis.temporal_lag is not None and analysis.temporal_match is not None
    dr = {n: _f(analysis.dot_ratios[n]) for n in TERM_NAMES}
    sh = {n: _f(analysis.signed_shares[n]) for n in TERM_NAMES}
    lag = analysis.temporal_lag.double()  # [nh, T]
    return {
        "attention_source": analysis.attention_source, "scale": analysis.scale,
        "score_identity_max_abs_err": analysis.score_identity_max_abs_err,
        "dot_ratios": dr, "signed_shares": sh,
        "largest_dot_ratio_term": max(dr, key=lambda n: dr[n]),
        "input_driven_dot_ratio": sum(dr[n] for n in INPUT_DRIVEN_TERMS),
        "input_driven_signed_share": sum(sh[n] for n in INPUT_DRIVEN_TERMS),
        "temporal_diagonal_fraction": float((lag == 0).double().mean()),
        "temporal_lag": lag.mean(0).tolist(),
        "temporal_match": {k: _f(v) for k, v in analysis.temporal_match.items()},
        "mean_full_score": _f(analysis.mean_full_score) if analysis.mean_full_score is not None else None,
        "per_head": {"dot_ratios": {n: analysis.dot_ratios[n].tolist() for n in TERM_NAMES},
                     "signed_shares": {n: analysis.signed_shares[n].tolist() for n in TERM_NAMES},
                     "temporal_lag": lag.tolist()},
    }


def _comparison_summary(analysis: AttentionAnalysis) -> dict[str, Any]:
    """Head-averaged residual norms, and the matches with the dataset-average and the rebuilt attention."""
    out: dict[str, Any] = {}
    if analysis.residual_norms is not None:
        out["residual_norms"] = {k: _f(v) for k, v in analysis.residual_norms.items()}
    if analysis.mean_attention_match is not None:
        out["mean_attention_match"] = {k: _f(v) for k, v in analysis.mean_attention_match.items()}
    if analysis.reconstructed_match is not None:
        out["reconstructed_match"] = {s: {k: _f(v) for k, v in m.items()}
                                      for s, m in analysis.reconstructed_match.items()}
    return out


def _step_summary(analysis: AttentionAnalysis) -> dict[str, Any]:
    """Samples per decoder step, the share of them ending there, and the samples' own attention lag."""
    out: dict[str, Any] = {}
    if analysis.step_counts is not None:
        cnt = analysis.step_counts.double()
        ends = cnt - torch.cat([cnt[1:], cnt.new_zeros(1)])  # samples whose last valid step (<eos>) is s
        out["step_counts"] = analysis.step_counts.tolist()
        out["eos_fraction_per_step"] = torch.where(cnt > 0, ends / cnt.clamp_min(1), math.nan).tolist()
    if analysis.attention_lag is not None:
        out["attention_lag"] = analysis.attention_lag.double().mean(0).tolist()
    return out


def _shares_by_key_token(by_key_token: dict[str, torch.Tensor],
                         src_vocab: Sequence[str] | None) -> dict[str, dict[str, float]]:
    """Per term, the head-averaged signed share split by encoder token (tokens never at a maximum left out)."""
    by_tok = {n: by_key_token[n].double().mean(0) for n in TERM_NAMES}
    used = torch.stack([v.abs() for v in by_tok.values()]).sum(0) > 0

    def name(i: int) -> str:
        return str(src_vocab[i]) if src_vocab is not None and i < len(src_vocab) else str(i)

    return {n: {name(i): float(v[i]) for i in range(v.numel()) if used[i]} for n, v in by_tok.items()}


# ----------------------------------------------------------------------------------------------------- figure data
_VIEW_HOOKS = (HOOK_ENC_STATES, HOOK_DEC_STATES, HOOK_DEC_TOKENS, HOOK_Q, HOOK_K, HOOK_WEIGHTS)


def _views_cache(model: Any, ds: Any) -> dict[str, torch.Tensor]:
    names = set(model.hook_names()) & set(_VIEW_HOOKS)
    _, cache = model.run_with_cache((ds.src, ds.src_lengths, ds.tgt, ds.tgt_lengths),
                                    names_filter=lambda n: n in names)
    return cache


def _side_parts(analysis: AttentionAnalysis, cache: dict[str, torch.Tensor], ds: Any,
                side: str) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor,
                                    torch.Tensor, Any]:
    """For ``side`` in ``encoder``/``decoder``: the vectors that enter the score (hidden states for dot attention and
    VED, projected keys/queries for QKV/multi-head/transformer) as ``[B, nh, L, D]``, their ``(mu, chi, delta)``,
    tokens, lengths and the fitted decomposition."""
    enc = side == "encoder"
    tokens = ds.src if enc else cache[HOOK_DEC_TOKENS]
    lengths = ds.src_lengths if enc else ds.tgt_lengths
    if analysis.attention_source == "qk":
        x = cache[HOOK_K if enc else HOOK_Q]
        d = analysis.decompositions["keys" if enc else "queries"]
        parts = d.transform(x, tokens, lengths, dtype=torch.float64)
    else:
        states = cache[HOOK_ENC_STATES if enc else HOOK_DEC_STATES]
        x = states.unsqueeze(1)
        d = analysis.decompositions["encoder" if enc else "decoder"]
        parts = tuple(p.unsqueeze(1) for p in d.transform(states, tokens, lengths, dtype=torch.float64))
    return x.double(), parts, tokens, lengths, d  # type: ignore[return-value]


def sample_attention_views(analysis: AttentionAnalysis, cache: dict[str, torch.Tensor], ds: Any,
                           index: int, head: int = 0) -> dict[str, Any]:
    """One sample's attention ``[T, S]`` (its valid block), the temporal-only attention (``muE_muD`` alone, over its
    valid source positions) and the attention rebuilt from :data:`REBUILD_TERMS`, for head ``head``; plus the
    token labels. ``cache`` comes from ``run_with_cache`` on ``ds`` (greedy)."""
    if analysis.n_heads == 0:
        raise InnerworksError("sample_attention_views: the model has no attention")
    _, k_parts, _, src_len, _ = _side_parts(analysis, cache, ds, "encoder")
    _, q_parts, _, tgt_len, _ = _side_parts(analysis, cache, ds, "decoder")
    terms = score_terms(k_parts, q_parts, analysis.scale or 1.0)
    w = cache[HOOK_WEIGHTS]
    w = w.unsqueeze(1) if w.dim() == 3 else w
    sl, tl = int(ds.src_lengths[index]), int(ds.tgt_lengths[index])
    one = {n: t[index:index + 1, head:head + 1] for n, t in terms.items()}
    src_l = ds.src_lengths[index:index + 1]
    temporal = attention_from_terms(one, src_l, ["muE_muD"])[0, 0]
    rebuilt = attention_from_terms(one, src_l, REBUILD_TERMS)[0, 0]
    return {
        "index": index, "head": head,
        "sample": w[index, head, :tl, :sl].double().tolist(),
        "temporal": temporal[:tl, :sl].tolist(),
        "rebuilt": rebuilt[:tl, :sl].tolist(),
        "src_tokens": [ds.src_vocab[int(i)] for i in ds.src[index, :sl]],
        "tgt_tokens": [ds.tgt_vocab[int(i)] for i in ds.tgt[index, :tl]],
    }


def _pca2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Center, top-2 principal axes ``[D, 2]``, the center and the explained-variance ratios."""
    center = x.mean(0)
    xc = x - center
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)
    var = s ** 2
    ratio = (var / var.sum().clamp_min(1e-300)).tolist()
    axes = vh[:2].T
    if axes.shape[1] < 2:  # one-dimensional data: pad a zero axis
        axes = torch.cat([axes, axes.new_zeros(axes.shape[0], 2 - axes.shape[1])], 1)
    return axes, center, (ratio + [math.nan, math.nan])[:2]


def mu_pca_data(analysis: AttentionAnalysis, cache: dict[str, torch.Tensor], ds: Any, head: int = 0,
                max_points: int = 600, max_tokens: int = 8) -> dict[str, Any]:
    """Data of the ``mu_pca__`` figure: ``mu^E_t`` and ``mu^D_s`` in the top-2 PCs of both together, and per side
    the vectors with ``mu`` removed (``chi + delta``, at most ``max_points``) in their own top-2 PCs, coloured by
    token, with ``chi(w)`` for the ``max_tokens`` most frequent tokens projected the same way."""
    out: dict[str, Any] = {}
    mus = []
    for side in ("encoder", "decoder"):
        x, (mu, _chi, _delta), tokens, lengths, d = _side_parts(analysis, cache, ds, side)
        seen = int((d.position_counts_ > 0).sum())
        mu_t = d.mu_[head] if d.mu_.dim() == 3 else d.mu_
        mus.append(mu_t[:seen].double())
        valid = torch.arange(x.shape[2])[None, :] < lengths[:, None]
        pts = (x - mu)[:, head][valid]  # [M, D]
        toks = tokens[valid]
        if pts.shape[0] > max_points:  # evenly spaced: deterministic
            idx = torch.linspace(0, pts.shape[0] - 1, max_points).round().long()
            pts, toks = pts[idx], toks[idx]
        axes, center, ev = _pca2(pts)
        vocab = ds.src_vocab if side == "encoder" else ds.tgt_vocab
        counts = d.token_counts_
        top = [int(i) for i in torch.argsort(counts, descending=True)[:max_tokens] if int(counts[i]) > 0]
        chi_t = d.chi_[head] if d.chi_.dim() == 3 else d.chi_
        out[side] = {"points": ((pts - center) @ axes).tolist(), "tokens": [vocab[int(t)] for t in toks],
                     "chi": {vocab[i]: ((chi_t[i].double() - center) @ axes).tolist() for i in top},
                     "explained": ev}
    both = torch.cat(mus)
    axes, center, ev = _pca2(both)
    out["mu"] = {"encoder": ((mus[0] - center) @ axes).tolist(), "decoder": ((mus[1] - center) @ axes).tolist(),
                 "explained": ev}
    return out


# ------------------------------------------------------------------------------------------------------ per row
def row_metrics(analysis: AttentionAnalysis, model: Any, ds: Any, batch_size: int = 256) -> dict[str, Any]:
    """Per-row numbers the claims resample or pool, from one more greedy pass over ``ds``:

    - ``per_row.input_driven``: each row's input-driven total, the sum over :data:`INPUT_DRIVEN_TERMS` of its dot
      ratios (top-``k``, averaged over its valid decoder steps), averaged over heads;
    - ``argmax_alignment``: Pearson r between the temporal-only attention's argmax
      ``argmax_t (mu^D_s . mu^E_t)`` (over the row's valid source positions) and the sample attention's argmax,
      pooled over every valid (row, decoder step) and averaged over heads; plus both argmaxes averaged per step and
      their Pearson r over steps (a diagnostic).
    """
    acc = DotRatioAccumulator(k=analysis.k, keep_samples=True)
    t_arg: list[torch.Tensor] = []
    s_arg: list[torch.Tensor] = []
    step: list[torch.Tensor] = []
    for start in range(0, len(ds), batch_size):
        part = ds.subset(slice(start, start + batch_size))
        cache = _views_cache(model, part)
        _, k_parts, _, src_len, _ = _side_parts(analysis, cache, part, "encoder")
        _, q_parts, _, tgt_len, _ = _side_parts(analysis, cache, part, "decoder")
        terms = score_terms(k_parts, q_parts, analysis.scale or 1.0)  # [B, nh, T, S]
        acc.update(terms, reconstruct_scores(terms), src_len, tgt_len)
        b, nh, t, s = terms["muE_muD"].shape
        w = cache[HOOK_WEIGHTS]
        w = (w.unsqueeze(1) if w.dim() == 3 else w)[:, :, :t, :s].double()
        src_m = (torch.arange(s)[None, :] < src_len[:, None])[:, None, None, :]
        valid = (torch.arange(t)[None, :] < tgt_len[:, None])  # [B, T]
        neg = torch.tensor(-math.inf, dtype=torch.float64)
        ta = torch.where(src_m, terms["muE_muD"], neg).argmax(-1)  # [B, nh, T]
        sa = torch.where(src_m, w, neg).argmax(-1)
        t_arg.append(ta.permute(0, 2, 1)[valid])  # [M, nh]
        s_arg.append(sa.permute(0, 2, 1)[valid])
        step.append(torch.arange(t).expand(b, t)[valid])
    ps = acc.result()["per_sample"]
    rows = sum(ps[n].double().reshape(len(ds), -1) for n in INPUT_DRIVEN_TERMS).mean(-1)  # type: ignore[index]
    ta, sa, st = torch.cat(t_arg).double(), torch.cat(s_arg).double(), torch.cat(step)
    pooled = [correlation(ta[:, h], sa[:, h])["pearson"] for h in range(ta.shape[1])]
    n_steps = int(st.max()) + 1
    cnt = torch.zeros(n_steps, dtype=torch.float64).index_add_(0, st, torch.ones_like(st, dtype=torch.float64))
    t_step = torch.zeros(n_steps, dtype=torch.float64).index_add_(0, st, ta.mean(1)) / cnt
    s_step = torch.zeros(n_steps, dtype=torch.float64).index_add_(0, st, sa.mean(1)) / cnt
    return {"per_row": {"input_driven": rows.tolist()},
            "argmax_alignment": {"pearson": float(np.nanmean(pooled)), "per_head": pooled, "n": int(ta.shape[0]),
                                 "temporal_argmax_per_step": t_step.tolist(),
                                 "sample_argmax_per_step": s_step.tolist(),
                                 "per_step_pearson": correlation(t_step, s_step)["pearson"]}}


# ------------------------------------------------------------------------------------------------------- analysis
def _pick_sample(ds: Any) -> int:
    """The first row with the longest source: the largest picture, chosen without looking at the model."""
    return int(torch.argmax(ds.src_lengths))


def analyze_model(model: Any, dataset: Any, *, name: str, metrics: dict[str, Any] | None = None,
                  out: str | Path | None = None, fig_out: str | Path | None = None, n_eval: int | None = None,
                  batch_size: int = 256, k: int = 5, n_view: int = 200, progress: bool = False) -> RunAnalysis:
    """Decompose ``model``'s attention on ``dataset`` (its first ``n_eval`` rows), summarise, draw and save.

    Args:
        model: a seq2seq model from :func:`innerworks.models.seq2seq.build_seq2seq` (moved to the CPU).
        dataset: a :class:`~innerworks.data.types.Seq2SeqDataset` (usually the test split).
        name: run name, used in figure names (``attention__NAME``...).
        metrics: the run's test metrics, copied into the JSON.
        out: folder for ``analysis.json`` (not written when None).
        fig_out: folder whose ``figures/`` receives the figures (none drawn when None).
        n_eval: analyse only the first ``n_eval`` rows.
        batch_size: rows per cached forward pass.
        k: top-k aligned positions for dot ratios (5, as in the paper's code).
        n_view: rows run once more for the sample heatmap and the PCA views.
        progress: rich spinners for the two passes.

    >>> import torch
    >>> from innerworks.data.seq2seq import make_seq2seq_splits
    >>> from innerworks.models.seq2seq import build_seq2seq
    >>> s = make_seq2seq_splits({"task": "one_to_one", "min_length": 2, "max_length": 4, "n_train": 4,
    ...                          "n_val": 2, "n_test": 16}, seed=0)
    >>> m = build_seq2seq({"arch": "aed", "hidden_size": 8}, len(s.src_vocab), len(s.tgt_vocab))
    >>> r = analyze_model(m, s.test, name="demo")
    >>> r.summary["has_attention"], len(r.summary["dot_ratios"])
    (True, 9)
    """
    from innerworks.data.seq2seq import escan_offsets

    model = model.cpu().eval()
    ds = dataset.subset(slice(0, n_eval)) if n_eval is not None and n_eval < len(dataset) else dataset
    task = str(ds.meta.get("task", "unknown"))
    arch = str(getattr(getattr(model, "cfg", None), "arch", type(model).__name__))
    offset = escan_offsets(ds) if task == "escan" else None
    analysis = decompose_attention(model_cache_batches(model, ds, batch_size), k=k, offset=offset,
                                   progress=progress)
    summary = summarize_analysis(analysis, offset, src_vocab=list(ds.src_vocab))
    if analysis.n_heads:
        summary.update(row_metrics(analysis, model, ds, batch_size))
    result = RunAnalysis(name, task, arch, dict(metrics or {}), analysis, summary,
                         None if offset is None else offset.tolist())
    if fig_out is not None:
        result.figures = draw_run_figures(result, model, ds, fig_out, n_view=n_view)
    if out is not None:
        result.json_path = Path(out) / "analysis.json"
        write_json(result.json_path, result.to_dict())
    return result


def draw_run_figures(result: RunAnalysis, model: Any, ds: Any, fig_out: str | Path, n_view: int = 200) -> list[str]:
    """Draw ``attention__NAME`` (attention models), ``term_shares__NAME``, ``mu_pca__NAME`` and, on eSCAN,
    ``lag__NAME`` into ``fig_out/figures``; return the names written."""
    from innerworks.attention import figures as F

    a, s, name = result.analysis, result.summary, result.name
    view = ds.subset(slice(0, min(n_view, len(ds))))
    cache = _views_cache(model, view)
    heads = f", head 0 of {a.n_heads}" if a.n_heads > 1 else ""
    label = f"{name} ({result.task}, {result.arch})"
    names: list[str] = []
    if a.n_heads:
        v = sample_attention_views(a, cache, view, _pick_sample(view))
        F.attention_figure(fig_out, f"attention__{name}",
                           {"sample attention": v["sample"], "temporal only (μE·μD)": v["temporal"],
                            "rebuilt from μ/χ terms": v["rebuilt"]},
                           v["src_tokens"], v["tgt_tokens"], f"{label}: test row {v['index']}{heads}")
        names.append(f"attention__{name}")
        F.term_shares_figure(fig_out, f"term_shares__{name}", s["per_head"]["dot_ratios"],
                             s["per_head"]["signed_shares"],
                             f"{label}: dot ratios (top-{a.k}) and signed shares at the maximal alignment")
        names.append(f"term_shares__{name}")
        if result.offset is not None:
            F.lag_figure(fig_out, f"lag__{name}", s["temporal_lag"], result.offset,
                         f"{label}: temporal argmax lag vs the data's mean offset",
                         attention_lag=s.get("attention_lag"), step_counts=s.get("step_counts"))
            names.append(f"lag__{name}")
    src = "projected keys/queries" if a.attention_source == "qk" else "hidden states"
    F.mu_pca_figure(fig_out, f"mu_pca__{name}", mu_pca_data(a, cache, view),
                    f"{label}: PCA of {src}{heads}")
    names.append(f"mu_pca__{name}")
    return names


def analyze_run(run_dir: str | Path, out: str | Path, *, split: str = "test", n_eval: int | None = None,
                batch_size: int = 256, k: int = 5, progress: bool = True) -> RunAnalysis:
    """Load a run directory written by :func:`innerworks.train.train` (``task: seq2seq``), analyse ``split``, and
    write ``out/analysis.json`` plus ``out/figures/``.

    >>> analyze_run("/nonexistent", "/tmp/x")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.InnerworksError: /nonexistent: not a run directory (no config.yaml)
    """
    from innerworks.train import load_run

    run = load_run(run_dir)
    if run.recipe.task != "seq2seq":
        raise InnerworksError(f"{run_dir}: task is {run.recipe.task!r}; analyze attention needs a 'seq2seq' run")
    if split not in ("train", "val", "test"):
        raise InnerworksError(f"split must be train, val or test, got {split!r}")
    if n_eval is not None and n_eval < 1:
        raise InnerworksError(f"n_eval must be >= 1, got {n_eval}")
    metrics = run.metrics.get(split, {}) if isinstance(run.metrics, dict) else {}
    return analyze_model(run.model, run.data[split], name=run.recipe.name, metrics=metrics, out=out, fig_out=out,
                         n_eval=n_eval, batch_size=batch_size, k=k, progress=progress)


__all__ = ["INPUT_DRIVEN_TERMS", "REBUILD_TERMS", "RunAnalysis", "analyze_model", "analyze_run", "draw_run_figures",
           "mu_pca_data", "row_metrics", "sample_attention_views", "summarize_analysis"]
