"""The attention decomposition over an evaluation set, in two streaming passes over cached activations.

1. :class:`FitPass`: fit :class:`TemporalInputDecomposition` on the encoder and decoder states (and, per head, on
   projected keys and queries when the model has them), infer the score scale, and sum the attention for its
   dataset average.
2. Between the passes, :class:`TemporalView` holds the temporal-only quantities, read off the fitted ``mu``: the
   temporal scores and attention, and the lag ``argmax_t(mu^D_s . mu^E_t) - s``.
3. :class:`MetricPass`: split every batch into ``mu + chi + delta``, form the nine score terms, check that they add
   up to the cached scores, and update the variance statistics and every metric accumulator; then assemble the
   :class:`AttentionAnalysis`.

Memory is bounded by one batch plus ``O(L*D + V*D + L*D*D)`` sums, whatever the number of batches.
:func:`decompose_attention` runs the three steps.

>>> sorted(DEFAULT_TERM_SETS)
['temporal', 'temporal+input']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from innerworks.attention.decompose.analysis import AttentionAnalysis
from innerworks.attention.decompose.cache import CacheBatch, CacheSource, read_batches, refuse_one_shot
from innerworks.attention.decompose.estimator import TemporalInputDecomposition, prepare_states
from innerworks.attention.decompose.variance import VarianceStats
from innerworks.attention.metrics import (
    AttentionLagAccumulator,
    AttentionMatchAccumulator,
    DotRatioAccumulator,
    ResidualNormAccumulator,
    SignedShareAccumulator,
    aligned_position_counts,
    compare_lag_to_offset,
    correlation,
    temporal_lag,
    temporal_scores,
)
from innerworks.attention.metrics.common import grow
from innerworks.attention.scores import (
    INPUT_TERMS,
    TEMPORAL_TERMS,
    attention_from_terms,
    infer_scale,
    reconstruct_scores,
    score_terms,
)
from innerworks.data.types import BOS_ID
from innerworks.errors import InnerworksError
from innerworks.models.hooks import HOOK_SCORES
from innerworks.models.masking import masked_softmax, valid_mask

DEFAULT_TERM_SETS: dict[str, tuple[str, ...]] = {"temporal": TEMPORAL_TERMS, "temporal+input": INPUT_TERMS}
"""Term subsets whose rebuilt attention :func:`decompose_attention` compares with per-sample attention."""


class FitPass:
    """Pass 1: fit the decompositions, infer the score scale, sum the attention for its dataset average.

    Attributes:
        enc, dec: decompositions of the encoder / decoder hidden states.
        keys, queries: per-head decompositions of projected keys / queries (None for dot attention, whose keys and
            queries are the states themselves, and for models without attention).
        scale: the score scale (given, or inferred from the first batch with scores; 1 without scores).
        n_heads: heads of the analysed attention. has_attention: whether the batches carry attention hooks.
        use_qk: whether queries/keys are decomposed separately from the states. n_batches: batches seen.

    >>> from innerworks.attention.decompose.cache import CacheBatch
    >>> h = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    >>> cache = {"encoder.hook_states": h, "decoder.hook_states": h, "src": torch.full((2, 3), 3),
    ...          "decoder.hook_tokens": torch.full((2, 3), 3), "src_lengths": torch.tensor([3, 2]),
    ...          "tgt_lengths": torch.tensor([3, 3]), "attn.hook_scores": 0.5 * h @ h.transpose(1, 2)}
    >>> fit = FitPass(scale=None); fit.add(CacheBatch.read(cache, 0))
    >>> round(fit.scale, 6), fit.n_heads, fit.mean_attention().shape
    (0.5, 1, torch.Size([1, 3, 3]))
    """

    def __init__(self, scale: float | None) -> None:
        self.enc, self.dec = TemporalInputDecomposition(), TemporalInputDecomposition()
        self.keys: TemporalInputDecomposition | None = None
        self.queries: TemporalInputDecomposition | None = None
        self.scale = scale
        self.n_heads = 0
        self.has_attention: bool | None = None
        self.use_qk = False
        self.n_batches = 0
        self._attn_sum: torch.Tensor | None = None  # [nh, T, S]
        self._attn_count: torch.Tensor | None = None  # [T, S]

    def add(self, b: CacheBatch) -> None:
        """Fit one batch."""
        self.enc.partial_fit(b.enc_h, b.src, b.src_len)
        self.dec.partial_fit(b.dec_h, b.dec_tok, b.tgt_len)
        this_att = b.has_attention
        if self.has_attention is None:
            self.has_attention = this_att
            # Plain dot attention caches q = h^D and k = h^E: decompose the states once instead of twice.
            self.use_qk = b.q is not None and not b.qk_are_states()
        elif self.has_attention != this_att:
            raise InnerworksError(f"{b.where}: attention hooks present in some batches but not others")
        self.n_batches += 1
        if not this_att:
            return
        if not self.use_qk:
            b.q = b.k = None
        self._fit_queries_keys(b)
        if self.scale is None:
            self.scale = self._infer_scale(b)
        self._add_attention(b)

    def _fit_queries_keys(self, b: CacheBatch) -> None:
        if b.q is None or b.k is None:
            self.n_heads = 1
            return
        self.n_heads = b.q.shape[1]
        if self.keys is None or self.queries is None:
            self.keys, self.queries = TemporalInputDecomposition(), TemporalInputDecomposition()
        self.keys.partial_fit(b.k, b.src, b.src_len)
        self.queries.partial_fit(b.q, b.dec_tok, b.tgt_len)

    def _infer_scale(self, b: CacheBatch) -> float:
        """Least-squares scale of the cached scores against ``q . k``; the fit must be exact."""
        if b.scores is None:
            return 1.0
        scale, resid = infer_scale(b.scores4(self.n_heads), b.queries(), b.keys(), b.src_len, b.tgt_len)
        if resid > 1e-3:
            raise InnerworksError(f"{b.where}: {HOOK_SCORES!r} is not scale * q . k (relative residual "
                                  f"{resid:.2e}); pass scale= or check the q/k hooks")
        return scale

    def _add_attention(self, b: CacheBatch) -> None:
        """Add the batch's attention (cached, or the softmax of its cached scores) to the per-(step, position) sums."""
        nh = self.n_heads
        if b.weights is not None:
            w4 = b.weights4(nh).detach().double()
        elif b.scores is not None:
            w4 = masked_softmax(b.scores4(nh).double(), b.src_len)
        else:
            return
        _, _, t, s = w4.shape
        pair = valid_mask(b.tgt_len.to(w4.device), t)[:, :, None] & valid_mask(b.src_len.to(w4.device), s)[:, None]
        if self._attn_sum is None or self._attn_count is None:
            self._attn_sum, self._attn_count = w4.new_zeros(nh, t, s), w4.new_zeros(t, s)
        self._attn_sum = grow(grow(self._attn_sum, t, 1), s, 2)
        self._attn_count = grow(grow(self._attn_count, t, 0), s, 1)
        self._attn_sum[:, :t, :s] += torch.where(pair[:, None], w4, 0.0).sum(0)
        self._attn_count[:t, :s] += pair.sum(0)

    def mean_attention(self) -> torch.Tensor | None:
        """The dataset-average attention ``[nh, T, S]`` over the samples valid at each (step, position)."""
        if self._attn_sum is None or self._attn_count is None:
            return None
        return self._attn_sum / self._attn_count.clamp_min(1)


@dataclass
class TemporalView:
    """What the fitted temporal components say on their own, computed between the two passes.

    Attributes:
        keys, queries: the decompositions whose vectors enter the score (the states for dot attention).
        source: ``"qk"`` (projected queries/keys) or ``"states"``.
        scores: ``[nh, T, S]`` temporal scores ``scale * mu^D . mu^E`` over every allocated position.
        attention: ``[nh, T, S]`` their softmax over the positions seen in the data.
        lag: ``[nh, T]`` temporal lag ``argmax_t(mu^D_s . mu^E_t) - s``.
        mean_attention: ``[nh, T, S]`` dataset-average attention (None when no batch had scores or weights).
    """

    keys: TemporalInputDecomposition
    queries: TemporalInputDecomposition
    source: str
    scores: torch.Tensor
    attention: torch.Tensor
    lag: torch.Tensor
    mean_attention: torch.Tensor | None

    @classmethod
    def of(cls, fit: FitPass) -> TemporalView:
        """The temporal view of a finished pass 1 (with attention)."""
        kd = fit.keys if fit.keys is not None else fit.enc
        qd = fit.queries if fit.queries is not None else fit.dec
        kc, qc = kd.components, qd.components
        s_seen, t_seen = kc.positions_seen, qc.positions_seen
        assert fit.scale is not None
        t_scores = temporal_scores(kc.mu, qc.mu, fit.scale)  # [nh, T_alloc, S_alloc]
        return cls(keys=kd, queries=qd, source="qk" if fit.keys is not None else "states", scores=t_scores,
                   attention=torch.softmax(t_scores[:, :t_seen, :s_seen], dim=-1),
                   lag=temporal_lag(kc.mu[:, :s_seen], qc.mu[:, :t_seen], fit.scale),
                   mean_attention=fit.mean_attention())


class MetricPass:
    """Pass 2: variance statistics of every decomposition and, with attention, the score-term metrics.

    Args:
        fit: the finished :class:`FitPass`.
        k: top-k aligned positions for dot ratios and residual norms.
        term_sets: term subsets to rebuild attention from.
        per_step_pca: per-step total variance and participation ratio of the hidden states.
    """

    def __init__(self, fit: FitPass, k: int, term_sets: Mapping[str, Sequence[str]], per_step_pca: bool) -> None:
        self.fit, self.k, self.term_sets = fit, k, dict(term_sets)
        self.temporal = TemporalView.of(fit) if fit.has_attention else None
        self.enc_v = VarianceStats(fit.enc, per_step=per_step_pca)
        self.dec_v = VarianceStats(fit.dec, per_step=per_step_pca)
        self.key_v = VarianceStats(fit.keys, per_step=False) if fit.keys is not None else None
        self.qry_v = VarianceStats(fit.queries, per_step=False) if fit.queries is not None else None
        self.dot = DotRatioAccumulator(k=k, keep_samples=True)
        self.share = SignedShareAccumulator()
        self.temporal_match = AttentionMatchAccumulator()
        self.attention_lag = AttentionLagAccumulator()
        self.mean_match = AttentionMatchAccumulator(keep_samples=True)
        self.rebuilt_match = {name: AttentionMatchAccumulator() for name in self.term_sets}
        self.res_enc, self.res_dec = ResidualNormAccumulator(), ResidualNormAccumulator()
        self.max_err = 0.0
        self.have_scores = False
        self.n_sequences = 0

    def add(self, b: CacheBatch) -> None:
        """Measure one batch."""
        self.n_sequences += int(b.src_len.shape[0])
        self.enc_v.update(b.enc_h, b.src, b.src_len)
        self.dec_v.update(b.dec_h, b.dec_tok, b.tgt_len)
        if self.temporal is None:
            return
        if not self.fit.use_qk:
            b.q = b.k = None
        if self.key_v is not None and self.qry_v is not None:
            self.key_v.update(b.k, b.src, b.src_len)
            self.qry_v.update(b.q, b.dec_tok, b.tgt_len)
        kp = prepare_states(b.keys(), b.src, b.src_len, b.where)
        qp = prepare_states(b.queries(), b.dec_tok, b.tgt_len, b.where)
        k_parts = self.temporal.keys.parts(kp, b.where)
        q_parts = self.temporal.queries.parts(qp, b.where)
        s_len, t_len = k_parts[0].shape[2], q_parts[0].shape[2]
        assert self.fit.scale is not None
        terms = score_terms(k_parts, q_parts, self.fit.scale)  # [B, nh, T, S]
        full = reconstruct_scores(terms)
        self._check_identity(b, full, t_len, s_len)
        self.dot.update(terms, full, b.src_len, b.tgt_len)
        self.share.update(terms, full, b.src_len, b.tgt_len, key_tokens=kp.tok)
        self._compare_attention(b, terms, full, t_len, s_len)
        counts = aligned_position_counts(full, b.src_len, b.tgt_len, self.k)  # [B, nh, S]
        self.res_enc.update(kp.x[:, :, :s_len], k_parts[0], k_parts[1], counts)
        self.res_dec.update(qp.x[:, :, :t_len], q_parts[0], q_parts[1], qp.mask[:, None, :t_len].double())

    def _check_identity(self, b: CacheBatch, full: torch.Tensor, t_len: int, s_len: int) -> None:
        """Track ``max |sum of the nine terms - cached score|`` over valid (step, position) pairs."""
        if b.scores is None:
            return
        pair = valid_mask(b.tgt_len.to(full.device), t_len)[:, None, :, None] & \
            valid_mask(b.src_len.to(full.device), s_len)[:, None, None, :]
        sc = b.scores4(self.fit.n_heads).detach().double()[:, :, :t_len, :s_len]
        err = torch.where(pair, (full - sc).abs(), 0.0).max()
        self.max_err = max(self.max_err, float(err))
        self.have_scores = True

    def _compare_attention(self, b: CacheBatch, terms: dict[str, torch.Tensor], full: torch.Tensor, t_len: int,
                           s_len: int) -> None:
        """Compare each sample's attention with the temporal-only, dataset-average and rebuilt attentions."""
        assert self.temporal is not None
        if b.weights is not None:
            sample = b.weights4(self.fit.n_heads).detach().double()[:, :, :t_len, :s_len]
        else:
            sample = masked_softmax(full, b.src_len)
        t_attn = masked_softmax(self.temporal.scores[:, :t_len, :s_len].unsqueeze(0).expand(full.shape), b.src_len)
        self.temporal_match.update(t_attn, sample, b.src_len, b.tgt_len)
        self.attention_lag.update(sample, b.src_len, b.tgt_len)
        if self.temporal.mean_attention is not None:
            self.mean_match.update(self.temporal.mean_attention[:, :t_len, :s_len], sample, b.src_len, b.tgt_len)
        for name, include in self.term_sets.items():
            rebuilt = attention_from_terms(terms, b.src_len, include)
            self.rebuilt_match[name].update(rebuilt, sample, b.src_len, b.tgt_len)

    # ---- assembling the result ------------------------------------------------------------------------------
    def result(self, offset: Sequence[float] | torch.Tensor | None) -> AttentionAnalysis:
        """The :class:`AttentionAnalysis` of everything measured."""
        fit, tv = self.fit, self.temporal
        analysis = AttentionAnalysis(
            n_sequences=self.n_sequences, n_heads=0 if tv is None else fit.n_heads,
            scale=None if tv is None else fit.scale, attention_source=None if tv is None else tv.source, k=self.k,
            encoder=self.enc_v.result(), decoder=self.dec_v.result(),
            decompositions={"encoder": fit.enc, "decoder": fit.dec},
        )
        if tv is None:
            return analysis
        if fit.keys is not None and fit.queries is not None:
            assert self.key_v is not None and self.qry_v is not None
            analysis.keys, analysis.queries = self.key_v.result(), self.qry_v.result()
            analysis.decompositions.update(keys=fit.keys, queries=fit.queries)
        dot = self._add_term_metrics(analysis)
        self._add_alignment(analysis, tv, offset)
        self._add_residual_norms(analysis)
        if tv.mean_attention is not None:
            self._add_mean_attention_match(analysis, dot)
        analysis.decompositions.update(keys=tv.keys, queries=tv.queries)
        return analysis

    def _add_term_metrics(self, analysis: AttentionAnalysis) -> dict[str, object]:
        """Score identity, dot ratios and signed shares; returns the dot-ratio result (its per-sample values)."""
        dr, sh = self.dot.result(), self.share.result()
        analysis.score_identity_max_abs_err = self.max_err if self.have_scores else None
        analysis.dot_ratios = _with_head_axis(dr["mean"])
        analysis.dot_ratios_per_step = _with_head_axis(dr["per_step"], base=1)
        analysis.signed_shares = _with_head_axis(sh["shares"])
        analysis.signed_shares_by_key_token = _with_head_axis(sh["by_key_token"], base=1)
        analysis.mean_full_score = sh["mean_full"].reshape(-1)
        return dr

    def _add_alignment(self, analysis: AttentionAnalysis, tv: TemporalView,
                       offset: Sequence[float] | torch.Tensor | None) -> None:
        """Temporal-only attention and its match with the samples, rebuilt-attention matches, and both lags."""
        analysis.temporal_attention = tv.attention
        analysis.temporal_match = _match(self.temporal_match.result())
        analysis.reconstructed_match = {name: _match(acc.result()) for name, acc in self.rebuilt_match.items()}
        analysis.temporal_lag = tv.lag
        al = self.attention_lag.result()
        analysis.attention_lag = al["lag"] if al["lag"].dim() == 2 else al["lag"].unsqueeze(0)
        analysis.step_counts = al["step_counts"]
        if offset is not None:
            off = torch.as_tensor(offset, dtype=torch.float64)
            nh = self.fit.n_heads
            analysis.lag_vs_offset = [compare_lag_to_offset(tv.lag[h], off) for h in range(nh)]
            analysis.attention_lag_vs_offset = [compare_lag_to_offset(analysis.attention_lag[h], off)
                                                for h in range(nh)]

    def _add_residual_norms(self, analysis: AttentionAnalysis) -> None:
        re, rd = self.res_enc.result(), self.res_dec.result()
        analysis.residual_norms = {"encoder_h_minus_mu": re["h_minus_mu"].reshape(-1),
                                   "encoder_delta": re["delta"].reshape(-1),
                                   "decoder_h_minus_mu": rd["h_minus_mu"].reshape(-1),
                                   "decoder_delta": rd["delta"].reshape(-1)}

    def _add_mean_attention_match(self, analysis: AttentionAnalysis, dot: dict[str, object]) -> None:
        """Per-sample attention vs the dataset average, and its correlation with the temporal dot ratio."""
        mm = self.mean_match.result()
        analysis.mean_attention_match = _match(mm)
        nh = self.fit.n_heads
        ps_tv = mm["per_sample_tv"].reshape(-1, nh)
        ps_mu = dot["per_sample"]["muE_muD"].reshape(-1, nh)
        analysis.similarity_vs_temporal_share = [correlation(ps_tv[:, h], ps_mu[:, h]) for h in range(nh)]


def _match(r: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """``{"tv", "argmax_agreement"}`` of an attention-match result, each flattened to ``[nh]``."""
    return {"tv": r["tv"].reshape(-1), "argmax_agreement": r["argmax_agreement"].reshape(-1)}


def _with_head_axis(d: Mapping[str, torch.Tensor], base: int = 0) -> dict[str, torch.Tensor]:
    """Make sure every value has a leading head axis."""
    return {n: (v if v.dim() > base else v.unsqueeze(0)) for n, v in d.items()}


def decompose_attention(
    cache_batches: CacheSource,
    *,
    scale: float | None = None,
    k: int = 5,
    offset: Sequence[float] | torch.Tensor | None = None,
    per_step_pca: bool = True,
    term_sets: Mapping[str, Sequence[str]] | None = None,
    bos_id: int = BOS_ID,
    progress: bool = False,
) -> AttentionAnalysis:
    """Decompose hidden states and attention scores over an evaluation set, in two streaming passes.

    Each cache batch is a dict with ``encoder.hook_states [B,S,H]``, ``decoder.hook_states [B,T,H]``,
    ``decoder.hook_tokens [B,T]`` (or ``logits``, from which they are derived), ``src [B,S]``,
    ``src_lengths``, ``tgt_lengths``, and for attention models ``attn.hook_scores`` / ``attn.hook_weights``
    (``[B,T,S]`` or ``[B,nh,T,S]``) and optionally ``attn.hook_q [B,nh,T,dq]`` / ``attn.hook_k [B,nh,S,dq]``.

    Pass 1 (:class:`FitPass`) fits :class:`TemporalInputDecomposition` on encoder and decoder states, and per head
    on the keys and queries when present (otherwise the states are the keys and queries, one head), plus the
    dataset-average attention. Pass 2 (:class:`MetricPass`) transforms each batch, forms the nine terms and updates
    every metric accumulator. Memory is bounded by one batch plus ``O(L*D + V*D + L*D*D)`` sums, whatever the
    number of batches.

    Args:
        cache_batches: a re-iterable (e.g. a list) or a zero-argument callable returning a fresh iterable; a
            one-shot iterator is refused, since two passes are needed.
        scale: score scale (``score = scale * q . k``); ``None`` infers it by least squares on the first batch
            and checks the fit is exact.
        k: top-k aligned positions for dot ratios and residual norms (5 in the paper's code).
        offset: the data's mean encoder-minus-decoder offset per decoder position, to compare with the lag.
        per_step_pca: compute per-step total variance and participation ratio of the hidden states.
        term_sets: term subsets to rebuild attention from (default :data:`DEFAULT_TERM_SETS`).
        bos_id: ``<bos>`` id used when decoder tokens are derived from logits.
        progress: show a rich progress spinner per pass.

    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> B, S, T, H = 8, 5, 4, 6
    >>> enc, dec = torch.randn(B, S, H, generator=g), torch.randn(B, T, H, generator=g)
    >>> batch = {"encoder.hook_states": enc, "decoder.hook_states": dec, "src": torch.randint(2, 6, (B, S)),
    ...          "decoder.hook_tokens": torch.randint(2, 6, (B, T)), "src_lengths": torch.full((B,), S),
    ...          "tgt_lengths": torch.full((B,), T), "attn.hook_scores": dec @ enc.transpose(1, 2)}
    >>> a = decompose_attention([batch])
    >>> a.n_heads, round(a.scale, 6), a.score_identity_max_abs_err < 1e-5
    (1, 1.0, True)
    """
    refuse_one_shot(cache_batches)
    fit = FitPass(scale)
    for b in read_batches(cache_batches, "attention: pass 1 (fit)", progress, bos_id):
        fit.add(b)
    if fit.n_batches == 0:
        raise InnerworksError("decompose_attention: cache_batches is empty")
    metrics = MetricPass(fit, k, DEFAULT_TERM_SETS if term_sets is None else term_sets, per_step_pca)
    for b in read_batches(cache_batches, "attention: pass 2 (metrics)", progress, bos_id):
        metrics.add(b)
    return metrics.result(offset)


__all__ = ["DEFAULT_TERM_SETS", "FitPass", "MetricPass", "TemporalView", "decompose_attention"]
