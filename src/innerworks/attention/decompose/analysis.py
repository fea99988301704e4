"""What :func:`~innerworks.attention.decompose.decompose_attention` measures, as one dataclass with JSON and text views.

>>> import torch
>>> r = VarianceReport(1, torch.tensor(1.0), {}, torch.tensor(0.5), torch.tensor(0.9), torch.ones(1),
...                    torch.ones(1), torch.ones(1), torch.tensor(1.0))
>>> AttentionAnalysis(1, 0, None, None, 5, r, r).to_dict()["attention_source"] is None
True
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from innerworks.attention.decompose.estimator import TemporalInputDecomposition
from innerworks.attention.decompose.variance import VarianceReport, to_plain
from innerworks.attention.scores import TERM_NAMES


@dataclass
class AttentionAnalysis:
    """Everything :func:`decompose_attention` measures. Attention fields are ``None`` for models without
    attention (VED). Per-head values are tensors with a leading head axis ``[nh]`` (``nh = 1`` for dot attention).

    Attributes:
        n_sequences: samples analysed. n_heads: attention heads (0 without attention). scale: score scale.
        attention_source: ``"states"`` (dot attention on hidden states), ``"qk"`` (projected queries/keys) or None.
        encoder / decoder: :class:`VarianceReport` of the hidden states (variance explained, per-word variance
            ratio, per-step total variance and participation ratio).
        keys / queries: :class:`VarianceReport` of the projected keys/queries (``"qk"`` only, no per-step PCA).
        score_identity_max_abs_err: ``max |sum of 9 terms - attn.hook_scores|`` over valid pairs.
        dot_ratios: ``{term: [nh]}``; dot_ratios_per_step: ``{term: [nh, T]}``.
        signed_shares: ``{term: [nh]}`` at the maximal alignment; mean_full_score: ``[nh]``.
        signed_shares_by_key_token: ``{term: [nh, V]}``, each share split by the encoder token at the maximal
            alignment (sums over ``V`` to ``signed_shares``).
        temporal_attention: ``[nh, T, S]`` softmax of ``scale * mu^D . mu^E`` over the positions seen in the data.
        temporal_match / mean_attention_match: ``{"tv", "argmax_agreement"}`` ``[nh]``: per-sample attention
            vs the temporal-only attention / vs the dataset-average attention.
        reconstructed_match: ``{set name: {"tv", "argmax_agreement"}}`` for attention rebuilt from term subsets.
        temporal_lag: ``[nh, T]`` ``argmax_t(mu^D_s . mu^E_t) - s``; lag_vs_offset: one dict per head (or None).
        attention_lag: ``[nh, T]`` mean over samples of ``argmax_t alpha[s, t] - s`` (the per-sample attention's
            own lag); attention_lag_vs_offset: one dict per head (or None); step_counts: ``[T]`` samples valid at
            each decoder step (the support of every per-step mean, ``mu^D_s`` included).
        residual_norms: ``{"encoder_h_minus_mu", "encoder_delta"}`` at the top-k aligned encoder positions and
            ``{"decoder_h_minus_mu", "decoder_delta"}`` over valid steps, each ``[nh]``, on the vectors that enter
            the score.
        similarity_vs_temporal_share: per head, correlation over samples between a sample's distance to the
            dataset-average attention (TV) and its ``muE_muD`` dot ratio (the paper's claim 3 predicts negative).
        decompositions: the fitted estimators (not serialised).
    """

    n_sequences: int
    n_heads: int
    scale: float | None
    attention_source: str | None
    k: int
    encoder: VarianceReport
    decoder: VarianceReport
    keys: VarianceReport | None = None
    queries: VarianceReport | None = None
    score_identity_max_abs_err: float | None = None
    dot_ratios: dict[str, torch.Tensor] | None = None
    dot_ratios_per_step: dict[str, torch.Tensor] | None = None
    signed_shares: dict[str, torch.Tensor] | None = None
    signed_shares_by_key_token: dict[str, torch.Tensor] | None = None
    mean_full_score: torch.Tensor | None = None
    temporal_attention: torch.Tensor | None = None
    temporal_match: dict[str, torch.Tensor] | None = None
    mean_attention_match: dict[str, torch.Tensor] | None = None
    reconstructed_match: dict[str, dict[str, torch.Tensor]] | None = None
    temporal_lag: torch.Tensor | None = None
    lag_vs_offset: list[dict[str, float]] | None = None
    attention_lag: torch.Tensor | None = None
    attention_lag_vs_offset: list[dict[str, float]] | None = None
    step_counts: torch.Tensor | None = None
    residual_norms: dict[str, torch.Tensor] | None = None
    similarity_vs_temporal_share: list[dict[str, float]] | None = None
    decompositions: dict[str, TemporalInputDecomposition] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tensors become lists, NaN becomes None); the fitted estimators are left out.

        >>> import torch
        >>> r = VarianceReport(1, torch.tensor(1.0), {}, torch.tensor(0.5), torch.tensor(0.9), torch.ones(1),
        ...                    torch.ones(1), torch.ones(1), torch.tensor(1.0))
        >>> AttentionAnalysis(1, 0, None, None, 5, r, r).to_dict()["n_heads"]
        0
        """
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "decompositions"}
        out["term_names"] = list(TERM_NAMES)
        return to_plain(out)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text of :meth:`to_dict`; also written atomically to ``path`` when given.

        >>> import torch
        >>> r = VarianceReport(1, torch.tensor(1.0), {}, torch.tensor(0.5), torch.tensor(0.9), torch.ones(1),
        ...                    torch.ones(1), torch.ones(1), torch.tensor(1.0))
        >>> AttentionAnalysis(1, 0, None, None, 5, r, r).to_json()[:1]
        '{'
        """
        from innerworks.utils.io import atomic_write_text

        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def summary(self) -> str:
        """A short human-readable text summary.

        >>> import torch
        >>> r = VarianceReport(1, torch.tensor(1.0), {"mu": torch.tensor(0.9)}, torch.tensor(0.9),
        ...                    torch.tensor(0.95), torch.ones(1), torch.ones(1), torch.ones(1), torch.tensor(0.8))
        >>> print(AttentionAnalysis(3, 0, None, None, 5, r, r).summary().splitlines()[0])
        attention decomposition: 3 sequences, no attention
        """

        def f(x: Any) -> str:
            if isinstance(x, torch.Tensor):
                x = x.flatten().tolist()
            if isinstance(x, list):
                return "[" + ", ".join(f(v) for v in x) + "]"
            return "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"

        head_txt = f"{self.n_heads} head(s), scale {self.scale:.4g}, from {self.attention_source}" if self.n_heads \
            else "no attention"
        lines = [f"attention decomposition: {self.n_sequences} sequences, {head_txt}"]
        for side, rep in (("encoder", self.encoder), ("decoder", self.decoder)):
            lines.append(f"  {side} states: R2(mu)={f(rep.r2_mu)} R2(mu+chi)={f(rep.r2_mu_chi)} "
                         f"variance ratio after mu={f(rep.variance_ratio)}")
        if self.n_heads:
            assert self.dot_ratios is not None and self.signed_shares is not None
            lines.append(f"  score identity max |sum(terms) - score| = {self.score_identity_max_abs_err:.2e}")
            lines.append(f"  {'term':<14}{'dot ratio (top-' + str(self.k) + ')':>22}{'share at max':>22}")
            for n in TERM_NAMES:
                lines.append(f"  {n:<14}{f(self.dot_ratios[n]):>22}{f(self.signed_shares[n]):>22}")
            lines.append(f"  mean full score at max: {f(self.mean_full_score)}")
            if self.temporal_match is not None:
                lines.append(f"  temporal-only attention vs sample: TV={f(self.temporal_match['tv'])} "
                             f"argmax agreement={f(self.temporal_match['argmax_agreement'])}")
            if self.lag_vs_offset is not None:
                lines.append("  lag vs data offset: " + "; ".join(
                    f"r={f(d['pearson'])} mean|diff|={f(d['mean_abs_diff'])}" for d in self.lag_vs_offset))
            if self.attention_lag_vs_offset is not None:
                lines.append("  samples' own attention lag vs data offset: " + "; ".join(
                    f"r={f(d['pearson'])} mean|diff|={f(d['mean_abs_diff'])}" for d in self.attention_lag_vs_offset))
        return "\n".join(lines)


__all__ = ["AttentionAnalysis"]
