"""Nine-term attention-score breakdown, its metrics, and the two-pass decompose_attention on constructed caches."""

from __future__ import annotations

import json
import math

import pytest
import torch

from innerworks.attention.decompose import TemporalInputDecomposition, decompose_attention
from innerworks.attention.metrics import (
    AttentionLagAccumulator,
    SignedShareAccumulator,
    aligned_position_counts,
    attention_lag,
    attention_match,
    compare_lag_to_offset,
    dot_ratios,
    residual_norm_fractions,
    signed_shares_at_max,
    temporal_attention,
    temporal_lag,
)
from innerworks.attention.scores import (
    TERM_NAMES,
    attention_from_terms,
    masked_softmax,
    reconstruct_scores,
    score_terms,
)
from innerworks.errors import InnerworksError

# ---------------------------------------------------------------------------------------------------------------
# Constructed caches. Source tokens: <pad>=0, <eos>=1, words 3..; decoder input tokens: <bos>=2 at step 0.
# ---------------------------------------------------------------------------------------------------------------


def _lengths_and_tokens(g: torch.Generator, b: int, s: int, t: int, shift: int, vocab: int):
    tgt_len = torch.randint(max(2, t - 3), t + 1, (b,), generator=g)
    src_len = (tgt_len + shift).clamp(max=s)
    src = torch.randint(3, vocab, (b, s), generator=g)
    dec_tok = torch.randint(3, vocab, (b, t), generator=g)
    dec_tok[:, 0] = 2
    for n in range(b):
        src[n, src_len[n] - 1] = 1
        src[n, src_len[n]:] = 0
        dec_tok[n, tgt_len[n]:] = 0
    return src, dec_tok, src_len, tgt_len


def _ring(positions: int, d: int, radius: float) -> torch.Tensor:
    """Points on a circle in the first two of d dims: mu_s . mu_t is maximal exactly at t = s."""
    ang = torch.arange(positions, dtype=torch.float64) * (2 * math.pi / (2.5 * positions))
    out = torch.zeros(positions, d, dtype=torch.float64)
    out[:, 0], out[:, 1] = radius * torch.cos(ang), radius * torch.sin(ang)
    return out


def _cache(enc: torch.Tensor, dec: torch.Tensor, src, dec_tok, src_len, tgt_len, garbage_pads: bool = True) -> dict:
    scores = dec @ enc.transpose(1, 2)
    weights = masked_softmax(scores, src_len)
    if garbage_pads:  # what lies beyond the lengths must never matter
        enc, dec, scores = enc.clone(), dec.clone(), scores.clone()
        enc[torch.arange(enc.shape[1])[None, :] >= src_len[:, None]] = float("nan")
        dec[torch.arange(dec.shape[1])[None, :] >= tgt_len[:, None]] = float("nan")
        scores[torch.isnan(scores)] = 1e9
    return {"encoder.hook_states": enc, "decoder.hook_states": dec, "decoder.hook_tokens": dec_tok, "src": src,
            "src_lengths": src_len, "tgt_lengths": tgt_len, "attn.hook_scores": scores, "attn.hook_weights": weights}


def temporal_cache(seed: int = 0, b: int = 64, s: int = 12, t: int = 10, d: int = 8, shift: int = 0,
                   noise: float = 1e-3) -> dict:
    """Purely temporal attention: h = mu_t + tiny noise, with decoder step s aligned to encoder position s+shift."""
    g = torch.Generator().manual_seed(seed)
    src, dec_tok, src_len, tgt_len = _lengths_and_tokens(g, b, s, t, shift, vocab=7)
    ring = _ring(s + shift, d, radius=4.0)
    enc = ring[:s][None] + noise * torch.randn(b, s, d, generator=g, dtype=torch.float64)
    dec = ring[shift:shift + t][None] + noise * torch.randn(b, t, d, generator=g, dtype=torch.float64)
    return _cache(enc, dec, src, dec_tok, src_len, tgt_len)


def input_cache(seed: int = 0, b: int = 60, s: int = 10, t: int = 10, d: int = 16) -> dict:
    """Input-driven attention: h = 3 * e(token) (centred embeddings) + a weak position signal; decoder step s
    attends to the encoder positions holding the same word as its input token (the word at source position s-1,
    so a match always exists). Words are balanced per position (each of the 5 words exactly b/5 times), so mu
    carries no finite-sample share of the embeddings."""
    g = torch.Generator().manual_seed(seed)
    vocab = 8
    src = 3 + torch.stack([torch.randperm(b, generator=g) % 5 for _ in range(s)], 1)
    src[:, -1] = 1  # <eos> closes every sequence
    dec_tok = torch.cat([torch.full((b, 1), 2), src[:, : t - 1]], 1)  # <bos>, then a word present in the source
    src_len, tgt_len = torch.full((b,), s), torch.full((b,), t)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    emb = q[:vocab] - q[3:vocab].mean(0)  # words 3..7 centred: their input components carry everything
    emb[:3] = 0.0
    pos = 0.1 * _ring(s, d, radius=1.0)
    enc = 3 * emb[src] + pos[None] + 1e-3 * torch.randn(b, s, d, generator=g, dtype=torch.float64)
    dec = 3 * emb[dec_tok] + pos[None, :t] + 1e-3 * torch.randn(b, t, d, generator=g, dtype=torch.float64)
    return _cache(enc, dec, src, dec_tok, src_len, tgt_len)


def split(cache: dict, cuts: list[int]) -> list[dict]:
    """Split a cache into batches, each trimmed to its own longest source/target (widths vary per batch)."""
    out, edges = [], [0, *cuts, cache["src"].shape[0]]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        ws, wt = int(cache["src_lengths"][a:b].max()), int(cache["tgt_lengths"][a:b].max())
        part = {}
        for key, v in cache.items():
            v = v[a:b]
            if key in ("encoder.hook_states", "src"):
                v = v[:, :ws]
            elif key in ("decoder.hook_states", "decoder.hook_tokens"):
                v = v[:, :wt]
            elif key in ("attn.hook_scores", "attn.hook_weights"):
                v = v[..., :wt, :ws]
            elif key == "attn.hook_q":
                v = v[:, :, :wt]
            elif key == "attn.hook_k":
                v = v[:, :, :ws]
            part[key] = v
        out.append(part)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The exact identity: the nine terms sum to the score.
# ---------------------------------------------------------------------------------------------------------------


def test_term_names_are_encoder_first() -> None:
    assert TERM_NAMES == ("muE_muD", "muE_chiD", "muE_deltaD", "chiE_muD", "chiE_chiD", "chiE_deltaD",
                          "deltaE_muD", "deltaE_chiD", "deltaE_deltaD")
    g = torch.Generator().manual_seed(0)
    enc = {p: torch.randn(2, 5, 3, generator=g, dtype=torch.float64) for p in ("mu", "chi", "delta")}
    dec = {p: torch.randn(2, 4, 3, generator=g, dtype=torch.float64) for p in ("mu", "chi", "delta")}
    terms = score_terms(enc, dec, scale=0.5)
    torch.testing.assert_close(terms["chiE_muD"], 0.5 * dec["mu"] @ enc["chi"].transpose(1, 2))
    torch.testing.assert_close(terms["muE_deltaD"], 0.5 * dec["delta"] @ enc["mu"].transpose(1, 2))


@pytest.mark.parametrize("heads", [None, 3])
def test_nine_terms_sum_to_score_exactly_float64(heads: int | None) -> None:
    def make(seed: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        n = torch.randint(2, length + 1, (20,), generator=g)
        tok = torch.randint(3, 8, (20, length), generator=g)
        x = torch.randn(20, *((heads,) if heads else ()), length, 6, generator=g, dtype=torch.float64)
        pad = torch.arange(length)[None, :] >= n[:, None]
        tok[pad] = 0
        x[pad[:, None].expand(20, heads, length) if heads else pad] = float("nan")  # garbage at pads
        return x, tok, n

    k, src, src_len = make(10, 9)
    q, dtok, tgt_len = make(11, 7)
    scale = 1 / math.sqrt(6)
    kp = TemporalInputDecomposition().fit_transform(k, src, src_len)
    qp = TemporalInputDecomposition().fit_transform(q, dtok, tgt_len)
    full = reconstruct_scores(score_terms(kp, qp, scale))
    kk, qq = k.nan_to_num(0.0), q.nan_to_num(0.0)
    ref = scale * qq @ kk.transpose(-1, -2)
    pair = (torch.arange(7)[None, :, None] < tgt_len[:, None, None]) & \
        (torch.arange(9)[None, None] < src_len[:, None, None])
    if heads:
        pair = pair[:, None].expand_as(ref)
    assert full.shape == ref.shape
    torch.testing.assert_close(full[pair], ref[pair], atol=1e-10, rtol=0)
    assert (full[~pair] == 0).all()


def test_nine_terms_sum_to_score_float32() -> None:
    g = torch.Generator().manual_seed(1)
    k = torch.randn(16, 2, 9, 8, generator=g)
    q = torch.randn(16, 2, 7, 8, generator=g)
    src = torch.randint(3, 9, (16, 9), generator=g)
    dtok = torch.randint(3, 9, (16, 7), generator=g)
    n_s, n_t = torch.full((16,), 9), torch.full((16,), 7)
    kp = TemporalInputDecomposition().fit_transform(k, src, n_s)
    qp = TemporalInputDecomposition().fit_transform(q, dtok, n_t)
    assert kp[0].dtype == torch.float32
    full = reconstruct_scores(score_terms(kp, qp, 0.25))
    torch.testing.assert_close(full, 0.25 * q @ k.transpose(-1, -2), atol=1e-5, rtol=1e-5)


def test_reconstruct_and_rebuilt_attention() -> None:
    t = {n: torch.zeros(1, 2, 3) for n in TERM_NAMES}
    t["muE_muD"] = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]])
    t["chiE_chiD"] = torch.tensor([[[0.0, 0.0, 9.0], [0.0, 0.0, 9.0]]])
    assert attention_from_terms(t, include=["muE_muD"]).argmax(-1).tolist() == [[0, 1]]
    assert attention_from_terms(t).argmax(-1).tolist() == [[2, 2]]
    # Source length 2 removes position 2 from the softmax.
    a = attention_from_terms(t, torch.tensor([2]))
    assert a[..., 2].abs().max() == 0 and torch.allclose(a.sum(-1), torch.ones(1, 2))
    with pytest.raises(InnerworksError, match="unknown term"):
        reconstruct_scores(t, include=["mu_mu"])


# ---------------------------------------------------------------------------------------------------------------
# Metric functions on hand-checkable inputs.
# ---------------------------------------------------------------------------------------------------------------


def test_dot_ratio_and_signed_share_by_hand() -> None:
    t = {n: torch.zeros(1, 1, 3, dtype=torch.float64) for n in TERM_NAMES}
    t["muE_muD"] = torch.tensor([[[3.0, 1.0, 8.0]]], dtype=torch.float64)
    t["chiE_chiD"] = torch.tensor([[[-1.0, 1.0, 0.0]]], dtype=torch.float64)
    full = t["muE_muD"] + t["chiE_chiD"]  # [2, 2, 8]; position 2 is invalid below
    r = dot_ratios(t, full, src_lengths=torch.tensor([2]), k=5)  # k is capped at the 2 valid positions
    assert r["mean"]["muE_muD"].item() == pytest.approx((0.75 + 0.5) / 2)
    assert r["mean"]["chiE_chiD"].item() == pytest.approx((0.25 + 0.5) / 2)
    r1 = dot_ratios(t, full, src_lengths=torch.tensor([2]), k=1)  # tie at 2.0: argmax takes the first (t=0)
    assert r1["mean"]["muE_muD"].item() == pytest.approx(0.75)
    sh = signed_shares_at_max(t, full, src_lengths=torch.tensor([2]))
    assert sh["shares"]["muE_muD"].item() == pytest.approx(1.5)
    assert sh["shares"]["chiE_chiD"].item() == pytest.approx(-0.5)
    assert sum(v.item() for v in sh["shares"].values()) == pytest.approx(1.0)


def test_dot_ratio_per_step_average_order() -> None:
    # Two samples; sample 2 has only step 0 valid. Per-step means are over samples valid at that step, then the
    # scalar is the mean over steps (not over all (sample, step) pairs).
    t = {n: torch.zeros(2, 2, 1, dtype=torch.float64) for n in TERM_NAMES}
    t["muE_muD"] = torch.tensor([[[1.0], [1.0]], [[1.0], [0.0]]], dtype=torch.float64)
    t["chiE_chiD"] = torch.tensor([[[0.0], [1.0]], [[1.0], [5.0]]], dtype=torch.float64)
    r = dot_ratios(t, reconstruct_scores(t), tgt_lengths=torch.tensor([2, 1]), k=1)
    assert r["per_step"]["muE_muD"].tolist() == pytest.approx([0.75, 0.5])
    assert r["mean"]["muE_muD"].item() == pytest.approx(0.625)
    assert r["step_counts"].tolist() == [2, 1]


def test_attention_match_lag_offset_residuals() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    q = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    m = attention_match(p, q, src_lengths=torch.tensor([3]))
    assert m["tv"].item() == pytest.approx((0.5 + 1.0) / 2)
    assert m["argmax_agreement"].item() == pytest.approx(0.5)
    mu_e = torch.eye(6, dtype=torch.float64)
    mu_d = torch.eye(6, dtype=torch.float64)[[1, 2, 4, 5]]  # lags 1, 1, 2, 2
    assert temporal_lag(mu_e, mu_d).tolist() == [1, 1, 2, 2]
    c = compare_lag_to_offset(temporal_lag(mu_e, mu_d), torch.tensor([1.0, 1.0, 2.0, 2.0, 9.0]))
    assert c["n"] == 4 and c["mean_abs_diff"] == 0.0 and c["pearson"] == pytest.approx(1.0)
    ta = temporal_attention(10 * mu_e, mu_d, src_lengths=torch.tensor([6, 2]))
    assert ta.shape == (2, 4, 6) and ta[1, :, 2:].abs().max() == 0
    full = torch.tensor([[[0.0, 5.0, 1.0], [9.0, 0.0, 1.0]]])
    assert aligned_position_counts(full, k=2).tolist() == [[1.0, 1.0, 2.0]]
    h = torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])
    r = residual_norm_fractions(h, torch.tensor([[[3.0, 0.0], [1.0, 0.0]]]), torch.tensor([[[0.0, 4.0], [0.0, 0.0]]]),
                                torch.tensor([[1.0, 3.0]]))
    assert r["h_minus_mu"].item() == pytest.approx(0.8 / 4) and r["delta"].item() == pytest.approx(0.0)


def test_attention_lag_by_hand_and_streamed() -> None:
    # Sample 0 attends one position ahead at both steps; sample 1 (one valid step, two valid sources) attends back.
    w = torch.tensor([[[0.1, 0.9, 0.0], [0.0, 0.2, 0.8]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    src, tgt = torch.tensor([3, 2]), torch.tensor([2, 1])
    r = attention_lag(w, src, tgt)
    assert r["lag"].tolist() == [0.5, 1.0] and r["step_counts"].tolist() == [2, 1]
    # the invalid source position 2 of sample 1 never wins, even with weight 1 at step 1 (an invalid step anyway)
    streamed = AttentionLagAccumulator().update(w[:1], src[:1], tgt[:1]).update(w[1:, :1], src[1:], tgt[1:]).result()
    assert streamed["lag"].tolist() == r["lag"].tolist() and streamed["step_counts"].tolist() == [2, 1]
    heads = attention_lag(torch.stack([w, w.flip(-1)], 1), src, tgt)["lag"]
    assert heads.shape == (2, 2) and heads[0].tolist() == [0.5, 1.0]
    with pytest.raises(InnerworksError, match="no valid"):
        AttentionLagAccumulator().update(w, src, torch.tensor([0, 0])).result()


def test_signed_shares_split_by_key_token_sum_to_the_shares() -> None:
    g = torch.Generator().manual_seed(5)
    b, t, s = 6, 4, 5
    terms = {n: torch.randn(b, t, s, generator=g, dtype=torch.float64) for n in TERM_NAMES}
    terms["muE_muD"] = terms["muE_muD"] + 4.0  # keep the full score at the maximum well away from 0
    full = reconstruct_scores(terms)
    src_len, tgt_len = torch.tensor([5, 4, 3, 5, 2, 5]), torch.tensor([4, 3, 4, 1, 2, 4])
    key_tokens = torch.randint(2, 7, (b, s), generator=g)
    one = SignedShareAccumulator().update(terms, full, src_len, tgt_len, key_tokens=key_tokens).result()
    assert one["by_key_token"]["muE_muD"].shape == (7,)
    for n in TERM_NAMES:
        assert one["by_key_token"][n].sum().item() == pytest.approx(one["shares"][n].item(), abs=1e-12)
    # by hand for one term: the term at argmax_t full, summed per token at that position, over the full sum
    idx = torch.where(torch.arange(s)[None, None] < src_len[:, None, None], full, -math.inf).argmax(-1)
    valid = torch.arange(t)[None] < tgt_len[:, None]
    at = terms["chiE_muD"].gather(-1, idx[..., None]).squeeze(-1)
    tok = key_tokens.gather(1, idx)
    f_sum = full.gather(-1, idx[..., None]).squeeze(-1)[valid].sum()
    want = torch.zeros(7, dtype=torch.float64).index_add_(0, tok[valid], at[valid]) / f_sum
    torch.testing.assert_close(one["by_key_token"]["chiE_muD"], want, atol=1e-12, rtol=0)
    acc = SignedShareAccumulator()
    for sl in (slice(0, 2), slice(2, 6)):  # the second batch sees larger token ids: the table grows
        acc.update({n: v[sl] for n, v in terms.items()}, full[sl], src_len[sl], tgt_len[sl],
                   key_tokens=key_tokens[sl])
    torch.testing.assert_close(acc.result()["by_key_token"]["chiE_muD"], want, atol=1e-12, rtol=0)
    with pytest.raises(InnerworksError, match="key_tokens"):
        SignedShareAccumulator().update(terms, full, key_tokens=key_tokens[:, :2])


# ---------------------------------------------------------------------------------------------------------------
# decompose_attention on constructed caches.
# ---------------------------------------------------------------------------------------------------------------


def test_purely_temporal_attention_is_recovered() -> None:
    a = decompose_attention([temporal_cache()], offset=torch.zeros(10))
    assert a.n_heads == 1 and a.attention_source == "states"
    assert a.scale == pytest.approx(1.0)
    assert a.score_identity_max_abs_err < 1e-10
    assert a.dot_ratios["muE_muD"].item() > 0.99
    assert a.signed_shares["muE_muD"].item() == pytest.approx(1.0, abs=0.01)
    assert a.temporal_match["tv"].item() < 0.02
    assert a.temporal_match["argmax_agreement"].item() == 1.0
    assert a.reconstructed_match["temporal"]["tv"].item() < 0.02
    assert a.temporal_lag[0].tolist() == [0] * 10
    assert a.lag_vs_offset[0]["mean_abs_diff"] == 0.0
    assert a.encoder.r2_mu.item() > 0.999 and a.decoder.r2_mu.item() > 0.999
    assert a.residual_norms["encoder_h_minus_mu"].item() < 0.01
    assert a.temporal_attention.shape == (1, 10, 10)  # trimmed to the positions the data reaches (S_max = 10)


def test_temporal_lag_follows_constructed_offset() -> None:
    a = decompose_attention([temporal_cache(seed=1, s=14, t=10, shift=2)], offset=torch.full((10,), 2.0))
    assert a.temporal_lag[0].tolist() == [2] * 10
    assert a.lag_vs_offset[0]["mean_abs_diff"] == 0.0
    # the samples' own attention has the same lag, and is compared with the offset the same way
    assert a.attention_lag[0].tolist() == [2.0] * 10
    assert a.attention_lag_vs_offset[0]["mean_abs_diff"] == 0.0
    assert a.temporal_match["argmax_agreement"].item() == 1.0


def test_input_driven_attention_is_recovered() -> None:
    a = decompose_attention([input_cache()], k=1)
    assert max(a.dot_ratios, key=lambda n: a.dot_ratios[n].item()) == "chiE_chiD"
    # Step 0 is keyed by <bos> alone, so chi^D is 0 there by construction; every later step is input-driven.
    assert a.dot_ratios_per_step["chiE_chiD"][0, 1:].min().item() > 0.9
    assert a.dot_ratios_per_step["chiE_chiD"][0, 0].item() < 0.01
    assert a.signed_shares["chiE_chiD"].item() > 0.9
    assert a.signed_shares["muE_muD"].item() < 0.1
    # The temporal-only attention is a poor approximation of token-matching attention; chi terms restore it.
    assert a.temporal_match["tv"].item() > 0.5
    assert a.reconstructed_match["temporal+input"]["tv"].item() < 0.05
    assert a.encoder.r2_mu_chi.item() > 0.99 > 0.5 > a.encoder.r2_mu.item()


def test_streaming_equals_one_shot_and_pass_inputs() -> None:
    cache = temporal_cache(seed=2, noise=0.3)
    one = decompose_attention([cache])
    batches = split(cache, [9, 30])
    many = decompose_attention(lambda: iter(batches))  # a callable giving a fresh iterator per pass is accepted
    for name in TERM_NAMES:
        torch.testing.assert_close(many.dot_ratios[name], one.dot_ratios[name], atol=1e-12, rtol=0)
        torch.testing.assert_close(many.signed_shares[name], one.signed_shares[name], atol=1e-12, rtol=0)
    for key in ("tv", "argmax_agreement"):
        torch.testing.assert_close(many.temporal_match[key], one.temporal_match[key], atol=1e-12, rtol=0)
        torch.testing.assert_close(many.mean_attention_match[key], one.mean_attention_match[key], atol=1e-12, rtol=0)
    torch.testing.assert_close(many.temporal_attention, one.temporal_attention, atol=1e-12, rtol=0)
    torch.testing.assert_close(many.attention_lag, one.attention_lag, atol=1e-12, rtol=0)
    assert many.step_counts.tolist() == one.step_counts.tolist()
    for name in TERM_NAMES:
        torch.testing.assert_close(many.signed_shares_by_key_token[name], one.signed_shares_by_key_token[name],
                                   atol=1e-12, rtol=0)
    torch.testing.assert_close(many.encoder.step_participation_ratio, one.encoder.step_participation_ratio,
                               atol=1e-10, rtol=0, equal_nan=True)
    torch.testing.assert_close(many.decoder.variance_ratio, one.decoder.variance_ratio, atol=1e-12, rtol=0)
    for key, v in one.residual_norms.items():
        torch.testing.assert_close(many.residual_norms[key], v, atol=1e-12, rtol=0)
    assert many.n_sequences == one.n_sequences == 64
    with pytest.raises(InnerworksError, match="one-shot iterator"):
        decompose_attention(iter(batches))
    with pytest.raises(InnerworksError, match="missing key"):
        decompose_attention([{"src": cache["src"]}])


def test_multi_head_learned_qk_per_head() -> None:
    g = torch.Generator().manual_seed(3)
    b, s, t, dq, nh = 32, 9, 7, 4, 2
    base = temporal_cache(seed=3, b=b, s=s, t=t, d=6, noise=0.2)
    wq = torch.randn(nh, 6, dq, generator=g, dtype=torch.float64)
    wk = torch.randn(nh, 6, dq, generator=g, dtype=torch.float64)
    enc, dec = base["encoder.hook_states"].nan_to_num(0.0), base["decoder.hook_states"].nan_to_num(0.0)
    q = torch.einsum("btd,hde->bhte", dec, wq).float()
    k = torch.einsum("bsd,hde->bhse", enc, wk).float()
    scores = q @ k.transpose(-1, -2) / math.sqrt(dq)
    cache = dict(base, **{"attn.hook_q": q, "attn.hook_k": k, "attn.hook_scores": scores,
                          "attn.hook_weights": masked_softmax(scores, base["src_lengths"])})
    a = decompose_attention([cache])
    assert a.n_heads == 2 and a.attention_source == "qk"
    assert a.scale == pytest.approx(1 / math.sqrt(dq), rel=1e-6)
    assert a.score_identity_max_abs_err < 1e-4  # float32 model scores vs float64 sum of terms
    assert a.dot_ratios["muE_muD"].shape == (2,) and a.temporal_lag.shape == (2, t)
    assert a.keys is not None and a.keys.r2_mu.shape == (2,)
    # Per head, the analysis equals a decomposition of that head's keys/queries alone.
    for h in range(nh):
        kd = TemporalInputDecomposition().fit(k[:, h], base["src"], base["src_lengths"])
        torch.testing.assert_close(a.decompositions["keys"].mu_[h], kd.mu_, atol=1e-12, rtol=0)
    with pytest.raises(InnerworksError, match="not scale"):
        decompose_attention([dict(cache, **{"attn.hook_scores": scores + torch.randn(scores.shape, generator=g)})])


def test_no_attention_model_and_serialisation(tmp_path) -> None:
    cache = {k: v for k, v in temporal_cache(seed=4).items() if not k.startswith("attn.")}
    a = decompose_attention([cache])
    assert a.n_heads == 0 and a.dot_ratios is None and a.encoder.step_participation_ratio is not None
    assert "no attention" in a.summary()
    full = decompose_attention([temporal_cache(seed=4)], offset=[0.0] * 10)
    text = full.to_json(tmp_path / "attn.json")
    data = json.loads((tmp_path / "attn.json").read_text())
    assert json.loads(text) == data
    assert data["term_names"] == list(TERM_NAMES) and len(data["dot_ratios"]) == 9
    assert "muE_muD" in full.summary()


def test_dot_attention_cache_with_q_equal_states_uses_states_once() -> None:
    cache = temporal_cache(seed=5)
    plain = decompose_attention([cache])
    with_qk = decompose_attention([dict(cache, **{"attn.hook_q": cache["decoder.hook_states"].unsqueeze(1),
                                                  "attn.hook_k": cache["encoder.hook_states"].unsqueeze(1)})])
    assert with_qk.attention_source == "states" and with_qk.keys is None
    for name in TERM_NAMES:
        torch.testing.assert_close(with_qk.dot_ratios[name], plain.dot_ratios[name], atol=0, rtol=0)


@pytest.mark.parametrize("arch", ["aed", "aed_mha", "transformer"])
def test_real_untrained_models_satisfy_the_identity(arch: str) -> None:
    """End to end on the project's seq2seq models: cache -> two passes; the nine terms rebuild the model's scores."""
    from innerworks.attention.decompose import model_cache_batches
    from innerworks.data.types import Seq2SeqDataset
    from innerworks.models.seq2seq import build_seq2seq

    g = torch.Generator().manual_seed(0)
    n, s = 24, 8
    lengths = torch.randint(3, s + 1, (n,), generator=g)
    src = torch.randint(3, 6, (n, s), generator=g)
    for i in range(n):
        src[i, lengths[i] - 1] = 1
        src[i, lengths[i]:] = 0
    ds = Seq2SeqDataset(src, lengths, src.clone(), lengths.clone(), ["<pad>", "<eos>", "<x>", "I0", "I1", "I2"],
                        ["<pad>", "<eos>", "<bos>", "O0", "O1", "O2"])
    cfg = {"arch": arch, "hidden_size": 8}
    if arch == "transformer":
        cfg.update(d_model=8, d_ff=16, num_layers=1, num_heads=2)
    model = build_seq2seq(cfg, 6, 6, seed=0).eval()
    a = decompose_attention(model_cache_batches(model, ds, batch_size=10))
    assert a.n_sequences == n
    assert a.n_heads == (1 if arch == "aed" else 2)
    assert a.attention_source == ("states" if arch == "aed" else "qk")
    assert a.scale == pytest.approx(model.attn_scale, rel=1e-5)
    assert a.score_identity_max_abs_err < 1e-4  # float32 model scores vs the float64 sum of the nine terms
    total = sum(a.dot_ratios[name] for name in TERM_NAMES)
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-9, rtol=0)
