"""Temporal/input/residual decomposition (innerworks.attention.decompose): exact identities, pad rule, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from innerworks.attention.decompose import (
    BOS_ID,
    TemporalInputDecomposition,
    VarianceStats,
    decoder_input_tokens,
)
from innerworks.errors import InnerworksError


def make_data(seed: int = 0, b: int = 40, length: int = 7, d: int = 5, vocab: int = 7, heads: int | None = None,
              nan_pads: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random float64 states with structure (position + token + noise), variable lengths, <eos>=1 then pads."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, length + 1, (b,), generator=g)
    tokens = torch.randint(3, vocab, (b, length), generator=g)
    shape_h = (heads,) if heads else ()
    pos = torch.randn(*shape_h, length, d, generator=g, dtype=torch.float64)
    emb = torch.randn(*shape_h, vocab, d, generator=g, dtype=torch.float64)
    noise = torch.randn(b, *shape_h, length, d, generator=g, dtype=torch.float64)
    for n in range(b):
        tokens[n, lengths[n] - 1] = 1  # <eos>
        tokens[n, lengths[n]:] = 0  # pads
    if heads:
        states = pos[None] + emb[:, tokens].permute(1, 0, 2, 3) + 0.5 * noise
    else:
        states = pos[None] + emb[tokens] + 0.5 * noise
    if nan_pads:  # garbage at pads must never leak into anything
        pad = (torch.arange(length)[None, :] >= lengths[:, None])
        states = states.clone()
        if heads:
            states[pad[:, None, :].expand(b, heads, length)] = float("nan")
        else:
            states[pad] = float("nan")
    return states, tokens, lengths


def reference_mu_chi(h: np.ndarray, tok: np.ndarray, lengths: np.ndarray, vocab: int) -> tuple[np.ndarray, ...]:
    """Direct loops over the definition: mu_t over valid samples; chi(w) pooled over ALL valid (n, t) with tok=w."""
    b, length, d = h.shape
    mu = np.zeros((length, d))
    for t in range(length):
        rows = [h[n, t] for n in range(b) if t < lengths[n]]
        if rows:
            mu[t] = np.mean(rows, axis=0)
    chi = np.zeros((vocab, d))
    for w in range(vocab):
        rows = [h[n, t] - mu[t] for n in range(b) for t in range(lengths[n]) if tok[n, t] == w]
        if rows:
            chi[w] = np.mean(rows, axis=0)
    return mu, chi


def test_identity_exact_and_zero_at_pads() -> None:
    h, tok, n = make_data()
    dec = TemporalInputDecomposition().fit(h, tok, n)
    mu, chi, delta = dec.transform(h, tok, n)
    valid = torch.arange(h.shape[1])[None, :] < n[:, None]
    assert mu.dtype == torch.float64
    torch.testing.assert_close((mu + chi + delta)[valid], h[valid], atol=1e-10, rtol=0)
    for part in (mu, chi, delta):
        assert torch.isfinite(part).all()
        assert (part[~valid] == 0).all()


def test_mu_chi_match_direct_definition_pooled_not_per_position() -> None:
    h, tok, n = make_data(seed=1, nan_pads=False)
    dec = TemporalInputDecomposition(vocab_size=7).fit(h, tok, n)
    mu_ref, chi_ref = reference_mu_chi(h.numpy(), tok.numpy(), n.numpy(), 7)
    np.testing.assert_allclose(dec.mu_.numpy(), mu_ref, atol=1e-10)
    np.testing.assert_allclose(dec.chi_.numpy(), chi_ref, atol=1e-10)
    # The pooled mean differs from the mean of per-position means on this data, so the test can tell them apart.
    w = 3
    per_pos = [np.mean([h[i, t].numpy() - mu_ref[t] for i in range(len(n)) if t < n[i] and tok[i, t] == w], axis=0)
               for t in range(h.shape[1]) if any(t < n[i] and tok[i, t] == w for i in range(len(n)))]
    assert np.abs(np.mean(per_pos, axis=0) - chi_ref[w]).max() > 1e-3
    # Counts: <eos> (id 1) included once per sequence, pads (id 0) never.
    assert int(dec.token_counts_[1]) == len(n)
    assert int(dec.token_counts_[0]) == 0
    assert dec.position_counts_.tolist() == [int((n > t).sum()) for t in range(h.shape[1])]


def test_pad_positions_never_contribute() -> None:
    h, tok, n = make_data(seed=2, nan_pads=False)
    pad = torch.arange(h.shape[1])[None, :] >= n[:, None]
    h2, tok2 = h.clone(), tok.clone()
    h2[pad] = 1e6
    tok2[pad] = 5  # a real word id at pad positions must be ignored too
    a = TemporalInputDecomposition().fit(h, tok, n)
    b = TemporalInputDecomposition().fit(h2, tok2, n)
    torch.testing.assert_close(a.mu_, b.mu_, atol=0, rtol=0)
    torch.testing.assert_close(a.chi_, b.chi_, atol=0, rtol=0)
    ra = VarianceStats(a).update(h, tok, n).result()
    rb = VarianceStats(b).update(h2, tok2, n).result()
    torch.testing.assert_close(ra.step_participation_ratio, rb.step_participation_ratio, atol=0, rtol=0)
    torch.testing.assert_close(ra.r2_mu_chi, rb.r2_mu_chi, atol=0, rtol=0)


def test_streaming_equals_one_shot() -> None:
    h, tok, n = make_data(seed=3, b=60)
    one = TemporalInputDecomposition().fit(h, tok, n)
    stream = TemporalInputDecomposition()
    # Uneven batches, each trimmed to its own longest sequence (so widths and vocab grow as batches arrive).
    order = torch.argsort(n)
    for idx in (order[:7], order[7:30], order[30:]):
        w = int(n[idx].max())
        stream.partial_fit(h[idx, :w], tok[idx, :w], n[idx])
    for name in ("mu_", "chi_", "token_means_", "global_mean_"):
        torch.testing.assert_close(getattr(stream, name), getattr(one, name), atol=1e-12, rtol=0)
    assert torch.equal(stream.token_position_counts_, one.token_position_counts_)
    r1 = VarianceStats(one).update(h, tok, n).result()
    vs = VarianceStats(stream)
    for idx in (order[:20], order[20:]):
        w = int(n[idx].max())
        vs.update(h[idx, :w], tok[idx, :w], n[idx])
    r2 = vs.result()
    for name in ("total_variance", "r2_mu", "r2_mu_chi", "variance_ratio", "step_total_variance",
                 "step_participation_ratio", "word_variance_before", "word_variance_after"):
        torch.testing.assert_close(getattr(r2, name), getattr(r1, name), atol=1e-10, rtol=0, equal_nan=True)


def test_variance_report_matches_direct_computation() -> None:
    h, tok, n = make_data(seed=4, b=80, nan_pads=False)
    dec = TemporalInputDecomposition().fit(h, tok, n)
    mu, chi, delta = dec.transform(h, tok, n)
    rep = VarianceStats(dec).update(h, tok, n).result()
    valid = torch.arange(h.shape[1])[None, :] < n[:, None]
    hv, muv, dv = h[valid].numpy(), mu[valid].numpy(), delta[valid].numpy()
    total = ((hv - hv.mean(0)) ** 2).sum()
    assert rep.n_states == hv.shape[0]
    np.testing.assert_allclose(float(rep.total_variance), total / hv.shape[0], rtol=1e-10)
    np.testing.assert_allclose(float(rep.r2_mu), 1 - ((hv - muv) ** 2).sum() / total, rtol=1e-10)
    np.testing.assert_allclose(float(rep.r2_mu_chi), 1 - (dv**2).sum() / total, rtol=1e-10)
    assert abs(sum(float(v) for v in rep.fractions.values()) - 1) < 1e-12
    # Per-word trace(cov) before / after subtracting mu_t (population covariance), then the mean ratio.
    ratios = []
    tv = tok[valid].numpy()
    for w in range(int(tv.max()) + 1):
        sel = tv == w
        if sel.sum() < 2:
            continue
        before = np.trace(np.cov(hv[sel].T, bias=True))
        after = np.trace(np.cov((hv - muv)[sel].T, bias=True))
        np.testing.assert_allclose(float(rep.word_variance_before[w]), before, rtol=1e-9)
        np.testing.assert_allclose(float(rep.word_variance_after[w]), after, rtol=1e-9)
        ratios.append(after / before)
    np.testing.assert_allclose(float(rep.variance_ratio), np.mean(ratios), rtol=1e-9)
    # Structured data: position + token explain most of the variance; subtracting mu reduces word variance.
    assert float(rep.r2_mu_chi) > float(rep.r2_mu) > 0.3
    assert float(rep.variance_ratio) < 0.9
    # Per-step total variance and participation ratio from PCA eigenvalues across samples.
    for t in range(h.shape[1]):
        x = h[n > t, t].numpy()
        if x.shape[0] < 2:
            assert np.isnan(float(rep.step_participation_ratio[t]))
            continue
        lam = np.linalg.eigvalsh(np.cov(x.T, bias=True))
        np.testing.assert_allclose(float(rep.step_total_variance[t]), lam.sum(), rtol=1e-9)
        np.testing.assert_allclose(float(rep.step_participation_ratio[t]), lam.sum() ** 2 / (lam**2).sum(), rtol=1e-9)


def test_decoder_keying_bos_at_step_zero_and_previous_prediction() -> None:
    logits = torch.zeros(2, 4, 6)
    pred = torch.tensor([[3, 4, 1, 0], [5, 5, 3, 1]])
    logits.scatter_(2, pred[..., None], 1.0)
    dec_in = decoder_input_tokens(logits)
    assert dec_in.tolist() == [[BOS_ID, 3, 4, 1], [BOS_ID, 5, 5, 3]]
    assert torch.equal(decoder_input_tokens(pred), dec_in)
    # Keyed by the previous PREDICTED token, not the target: a wrong prediction changes the key.
    target = torch.tensor([[3, 3, 1, 0], [5, 5, 3, 1]])
    assert not torch.equal(decoder_input_tokens(target), dec_in)
    # BOS only occurs at step 0, so chi(BOS) = mean over samples of (h_0 - mu_0) = 0 and delta_0 = h_0 - mu_0.
    h, _, n = make_data(seed=5, b=30, vocab=9)
    g = torch.Generator().manual_seed(0)
    toks = decoder_input_tokens(torch.randint(3, 9, (30, h.shape[1]), generator=g))
    d = TemporalInputDecomposition().fit(h, toks, n)
    assert float(d.chi_[BOS_ID].abs().max()) < 1e-12
    mu, chi, delta = d.transform(h, toks, n)
    torch.testing.assert_close(delta[:, 0], h[:, 0] - d.mu_[0], atol=1e-12, rtol=0)


def test_multi_head_decomposes_each_head_independently() -> None:
    h, tok, n = make_data(seed=6, heads=3)
    joint = TemporalInputDecomposition().fit(h, tok, n)
    assert joint.mu_.shape == (3, h.shape[2], h.shape[3]) and joint.n_heads_ == 3
    mu, chi, delta = joint.transform(h, tok, n)
    rep = VarianceStats(joint).update(h, tok, n).result()
    assert rep.r2_mu.shape == (3,)
    for head in range(3):
        single = TemporalInputDecomposition().fit(h[:, head], tok, n)
        torch.testing.assert_close(joint.mu_[head], single.mu_, atol=1e-12, rtol=0)
        torch.testing.assert_close(joint.chi_[head], single.chi_, atol=1e-12, rtol=0)
        m1, c1, d1 = single.transform(h[:, head], tok, n)
        torch.testing.assert_close(delta[:, head], d1, atol=1e-12, rtol=0)
        r1 = VarianceStats(single).update(h[:, head], tok, n).result()
        torch.testing.assert_close(rep.r2_mu_chi[head], r1.r2_mu_chi, atol=1e-12, rtol=0)


def test_float32_input_keeps_dtype_and_identity() -> None:
    h, tok, n = make_data(seed=7, nan_pads=False)
    h32 = h.float()
    mu, chi, delta = TemporalInputDecomposition().fit_transform(h32, tok, n)
    assert mu.dtype == torch.float32
    valid = torch.arange(h.shape[1])[None, :] < n[:, None]
    torch.testing.assert_close((mu + chi + delta)[valid], h32[valid], atol=1e-5, rtol=1e-5)


def test_bad_input_raises_innerworks_error() -> None:
    h, tok, n = make_data(seed=8, nan_pads=False)
    with pytest.raises(InnerworksError, match="vocab_size"):
        TemporalInputDecomposition(vocab_size=4).fit(h, tok, n)
    with pytest.raises(InnerworksError, match="lengths"):
        TemporalInputDecomposition().fit(h, tok, n + 100)
    with pytest.raises(InnerworksError, match="tokens"):
        TemporalInputDecomposition().fit(h, tok[:, :-1], n)
    with pytest.raises(InnerworksError, match="not fitted"):
        TemporalInputDecomposition().transform(h, tok, n)
    short = TemporalInputDecomposition().fit(h[:, :3], tok[:, :3], n.clamp(max=3))
    with pytest.raises(InnerworksError, match="longer than any fitted"):
        short.transform(h, tok, n)
    with pytest.raises(InnerworksError, match="max_len"):
        TemporalInputDecomposition(max_len=2).fit(h, tok, n)
