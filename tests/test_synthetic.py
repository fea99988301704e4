"""Synthetic evidence-integration tasks: every label rule re-derived from the tokens by an independent, per-document
pure-Python implementation of the rules in shared/papers/integration.md §2 (with the authors' counter semantics for
`not` / `extremely`), plus balancing, lengths, uniform-score coverage, context constraints, determinism and validation.
"""

from __future__ import annotations

import itertools
from collections import Counter
from fractions import Fraction

import pytest
import torch
from pydantic import ValidationError

from innerworks.data.synthetic import (
    SyntheticConfig,
    evidence_scores,
    generate,
    labels_from_scores,
    make_splits,
    vocabulary,
)
from innerworks.data.types import TextDataset
from innerworks.errors import ConfigError, DataError

ORDERED_VALUES = {"awful": -2, "bad": -1, "the": 0, "good": 1, "awesome": 2}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------- independent reference implementation


def ref_scores(words: list[str], cfg: SyntheticConfig) -> list[int]:
    """Per-document score with decaying counters, as in the authors' scorer: `not` sets 4, `extremely` sets 2, both
    decrement after every token (so `not` covers the next 3 tokens, `extremely` the next one)."""
    n = 1 if cfg.task == "ordered" else cfg.num_classes
    score = [0] * n
    not_left = ext_left = 0
    for w in words:
        assert w != "<pad>", "padding inside a document"
        vec = [0] * n
        if cfg.task == "ordered" and w in ORDERED_VALUES:
            vec[0] = ORDERED_VALUES[w]
        elif w.startswith("kinda"):
            vec[int(w[5:])] = 1
        elif w.startswith("bad") and cfg.task == "categorical":
            vec[int(w[3:])] = -1
        if w == "not":
            not_left = 4
        elif w == "extremely":
            ext_left = 2
        else:
            sign = -1 if not_left > 0 else 1
            mult = 2 if ext_left > 0 else 1
            score = [s + sign * mult * v for s, v in zip(score, vec, strict=True)]
        not_left = max(not_left - 1, 0)
        ext_left = max(ext_left - 1, 0)
    return score


def ref_correlate(score: list[float], pairs: list[tuple[int, int, float]], coins: list[bool]) -> list[float]:
    new = [float(s) for s in score]
    for (i, j, c), coin in zip(pairs, coins, strict=True):
        avg = (score[i] + score[j]) / 2.0
        new[i] = new[i] + (-c * score[i] + (2.0 * c * avg if coin else 0.0))
        new[j] = new[j] + (-c * score[j] + (0.0 if coin else 2.0 * c * avg))
    return new


def ref_label(score: list[float], length: int, cfg: SyntheticConfig):
    n = cfg.num_classes
    if cfg.task == "categorical":
        if cfg.multilabel:
            return [1.0 if s >= 0 else 0.0 for s in score]
        best = max(score)
        return score.index(best)  # first maximal index
    s = Fraction(int(score[0]))
    L = Fraction(length)
    if cfg.uniform_score:
        smax = 2 * L if cfg.extreme_words else L
        cuts = [-smax + k * (2 * smax + 1) / n for k in range(1, n)]
        return next((k for k, cut in enumerate(cuts) if s <= cut), n - 1)
    if n == 2:
        return 1 if s >= 0 else 0
    if n == 3:
        return 2 if s >= L / 3 else 0 if s <= -L / 3 else 1
    for cls, cut in ((4, Fraction(18, 100)), (3, Fraction(5, 100)), (2, Fraction(-5, 100)), (1, Fraction(-18, 100))):
        if s > cut * L:
            return cls
    return 0


def check_against_reference(ds: TextDataset, cfg: SyntheticConfig) -> list[list[float]]:
    pairs = cfg.correlation_pairs
    coins = ds.meta["corr_coins"].tolist() if pairs else None
    all_scores = []
    for i in range(len(ds)):
        words = ds.decode(i)
        score = ref_scores(words, cfg)
        if pairs:
            score = ref_correlate(score, pairs, coins[i])
        expected = ref_label(score, len(words), cfg)
        got = ds.labels[i].tolist()
        assert got == expected, f"doc {i} {words}: score {score} -> label {expected}, generator gave {got}"
        all_scores.append(score)
    # the module's own recomputation agrees with the reference too
    mine = evidence_scores(ds, cfg)
    ref = torch.tensor(all_scores, dtype=torch.float64)
    assert torch.equal(mine.reshape(ref.shape), ref)
    assert torch.equal(labels_from_scores(mine, ds.lengths, cfg), ds.labels)
    return all_scores


# -------------------------------------------------------------------------------------------------------- label rules

RULE_CASES = [
    dict(task="categorical", num_classes=3, length=20),
    dict(task="categorical", num_classes=4, length=12, balance=False),
    dict(task="categorical", num_classes=3, length=15, context_words=True, min_length=5),
    dict(task="categorical", num_classes=4, length=16, correlations={"01": 0.7, "12": 0.7, "23": 0.7, "30": 0.7}),
    dict(task="categorical", num_classes=3, length=10, correlations={"0-2": 0.5}, balance=False),
    dict(task="categorical", num_classes=3, length=14, multilabel=True, context_words=True),
    dict(task="categorical", num_classes=3, length=12, uniform_score=True, min_length=3),
    dict(task="ordered", num_classes=2, length=11, balance=False),
    dict(task="ordered", num_classes=3, length=9),
    dict(task="ordered", num_classes=3, length=18, min_length=6, extreme_words=True, context_words=True),
    dict(task="ordered", num_classes=5, length=20),
    dict(task="ordered", num_classes=5, length=25, extreme_words=True, context_words=True, min_length=10),
    dict(task="ordered", num_classes=2, length=10, uniform_score=True),
    dict(task="ordered", num_classes=3, length=12, uniform_score=True, extreme_words=True, min_length=4),
    dict(task="ordered", num_classes=5, length=30, uniform_score=True, extreme_words=True),
]


@pytest.mark.parametrize("kw", RULE_CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_labels_follow_the_rules_recomputed_from_tokens(kw):
    cfg = SyntheticConfig(**kw)
    ds = generate(cfg, 400, gen(1))
    assert ds.vocab == vocabulary(cfg) and ds.multilabel == cfg.multilabel
    check_against_reference(ds, cfg)


def test_ordered_cut_points_are_exact_at_the_boundaries():
    cfg = SyntheticConfig(task="ordered", num_classes=5, length=300)
    # 0.18 * 300 = 54 exactly: strict '>' keeps s = 54 in Four (float 0.18*300 = 53.999... would not)
    s = torch.tensor([54.0, 55.0, 15.0, 16.0, -15.0, -14.0, -54.0, -53.0])
    assert labels_from_scores(s, torch.full((8,), 300), cfg).tolist() == [3, 4, 2, 3, 1, 2, 0, 1]
    cfg3 = SyntheticConfig(task="ordered", num_classes=3, length=30)
    s3 = torch.tensor([10.0, 9.0, -9.0, -10.0])
    assert labels_from_scores(s3, torch.full((4,), 30), cfg3).tolist() == [2, 1, 1, 0]
    # variable length: the document's own length sets the cut (s=4: Good at L=12, Neutral at L=13)
    assert labels_from_scores(torch.tensor([4.0, 4.0]), torch.tensor([12, 13]), cfg3).tolist() == [2, 1]


def test_categorical_ties_go_to_the_lowest_class():
    cfg = SyntheticConfig(task="categorical", num_classes=3)
    s = torch.tensor([[2.0, 2.0, 1.0], [0.0, 3.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    assert labels_from_scores(s, torch.full((3,), 5), cfg).tolist() == [0, 1, 0]


def test_correlated_pairs_keep_the_pair_sum_and_pool_a_fraction():
    cfg = SyntheticConfig(task="categorical", num_classes=3, length=30, correlations={"01": 0.7}, balance=False)
    ds = generate(cfg, 500, gen(2))
    raw = evidence_scores(ds, SyntheticConfig(task="categorical", num_classes=3, length=30))
    new = evidence_scores(ds, cfg)
    assert torch.allclose(new[:, 0] + new[:, 1], raw[:, 0] + raw[:, 1])
    assert torch.equal(new[:, 2], raw[:, 2])
    coin = ds.meta["corr_coins"][:, 0]
    assert torch.allclose(new[coin, 1], 0.3 * raw[coin, 1])  # the loser keeps (1 - c) of its score
    assert torch.allclose(new[~coin, 0], 0.3 * raw[~coin, 0])
    assert bool((new[coin, 0] != raw[coin, 0]).any())
    assert 0.4 < coin.float().mean() < 0.6


# ---------------------------------------------------------------------------------------------------------- balancing


@pytest.mark.parametrize("kw,n", [
    (dict(task="categorical", num_classes=4, length=10), 400),
    (dict(task="ordered", num_classes=5, length=20, context_words=True), 500),
    (dict(task="ordered", num_classes=3, length=30), 300),  # Good/Bad are rare (~1%): many balancing rounds
])
def test_balancing_gives_equal_class_counts(kw, n):
    ds = generate(SyntheticConfig(**kw), n, gen(3))
    counts = torch.bincount(ds.labels, minlength=ds.num_classes)
    assert counts.tolist() == [n // ds.num_classes] * ds.num_classes
    assert ds.meta["candidates_drawn"] >= n


def test_balancing_multilabel_covers_every_label_combination_equally():
    cfg = SyntheticConfig(task="categorical", num_classes=3, multilabel=True, length=12)
    ds = generate(cfg, 800, gen(4))
    combos = Counter(tuple(int(v) for v in row) for row in ds.labels.tolist())
    assert sorted(combos) == sorted(itertools.product((0, 1), repeat=3))
    assert set(combos.values()) == {100}


def test_balancing_with_remainder_and_unbalanced_mode():
    ds = generate(SyntheticConfig(num_classes=3, length=8), 10, gen(5))
    assert sorted(torch.bincount(ds.labels, minlength=3).tolist()) == [3, 3, 4]
    raw = generate(SyntheticConfig(num_classes=3, length=8, balance=False), 3000, gen(5))
    counts = torch.bincount(raw.labels, minlength=3)
    assert counts[0] > counts[2]  # ties go to the lowest class, so unbalanced data favours class 0


def test_impossible_balance_raises_a_config_error():
    with pytest.raises(ConfigError, match="cannot balance classes: class 'Two'"):
        generate(SyntheticConfig(task="ordered", num_classes=5, length=1), 50, gen(0))


# ------------------------------------------------------------------------------------------ lengths and the token grid


@pytest.mark.parametrize("kw", [
    dict(task="categorical", num_classes=3, length=12, min_length=4),
    dict(task="categorical", num_classes=3, length=12, min_length=4, context_words=True),
    dict(task="categorical", num_classes=3, length=12, min_length=4, uniform_score=True),
    dict(task="ordered", num_classes=3, length=12, min_length=4, uniform_score=True, extreme_words=True),
])
def test_variable_lengths_within_bounds_and_padding_only_after_the_end(kw):
    cfg = SyntheticConfig(**kw)
    ds = generate(cfg, 600, gen(6))
    assert ds.tokens.shape == (600, 12)
    assert int(ds.lengths.min()) == 4 and int(ds.lengths.max()) == 12  # both bounds are drawn
    assert set(torch.bincount(ds.lengths)[4:].tolist()) != {0}
    after_end = torch.arange(12) >= ds.lengths.unsqueeze(1)
    assert torch.equal(ds.tokens == 0, after_end)


def test_fixed_length_has_no_padding():
    ds = generate(SyntheticConfig(task="ordered", num_classes=2, length=7, extreme_words=True), 200, gen(7))
    assert bool((ds.lengths == 7).all()) and bool((ds.tokens > 0).all())


def test_iid_words_are_uniform_over_the_word_list():
    cfg = SyntheticConfig(task="ordered", num_classes=5, length=50, extreme_words=True, balance=False)
    ds = generate(cfg, 2000, gen(8))
    freq = torch.bincount(ds.tokens.reshape(-1), minlength=6)[1:].double() / ds.tokens.numel()
    assert torch.allclose(freq, torch.full((5,), 0.2, dtype=torch.float64), atol=0.005)


# ------------------------------------------------------------------------------------------------------ uniform score


def test_uniform_score_categorical_is_uniform_over_all_count_vectors():
    n_docs = 20_000
    for num_classes, length in ((2, 3), (3, 2)):
        cfg = SyntheticConfig(num_classes=num_classes, length=length, uniform_score=True, balance=False)
        ds = generate(cfg, n_docs, gen(9))
        counts = [tuple(r) for r in torch.stack([(ds.tokens == 1 + c).sum(1) for c in range(num_classes)], 1).tolist()]
        support = [v for v in itertools.product(range(length + 1), repeat=num_classes) if sum(v) <= length]
        assert len(support) == 10  # C(L+N, N)
        freq = Counter(counts)
        assert set(freq) == set(support)
        expected = n_docs / len(support)
        for v in support:  # binomial sd ~ 52: 6 sd
            assert abs(freq[v] - expected) < 6 * (expected * 0.9) ** 0.5, (num_classes, length, v, freq[v])


def test_uniform_score_categorical_fills_the_simplex_at_paper_length():
    cfg = SyntheticConfig(num_classes=3, length=50, uniform_score=True, balance=False)
    ds = generate(cfg, 4000, gen(10))
    counts = torch.stack([(ds.tokens == 1 + c).sum(1) for c in range(4)], 1).double()  # kinda0..2, the
    # uniform over the 4-part compositions of 50: every part has mean 50/4 and the whole range is used
    assert torch.allclose(counts.mean(0), torch.full((4,), 12.5, dtype=torch.float64), atol=0.8)
    assert int(counts[:, :3].max()) >= 45 and int(counts[:, 3].max()) >= 45


def test_uniform_score_ordered_scores_are_uniform_and_documents_uniform_given_the_score():
    # L = 3 with awesome/awful: scores -6..6 equally likely; within a score, every count vector equally likely
    cfg = SyntheticConfig(task="ordered", num_classes=3, length=3, uniform_score=True, extreme_words=True,
                          balance=False)
    ds = generate(cfg, 26_000, gen(11))
    scores = evidence_scores(ds, cfg).long()
    hist = torch.bincount(scores + 6, minlength=13)
    assert abs(hist.double() / 2000 - 1).max() < 0.15
    words = ["awful", "bad", "the", "good", "awesome"]
    vectors = [tuple(r) for r in torch.stack([(ds.tokens == 1 + k).sum(1) for k in range(5)], 1).tolist()]
    by_score: dict[int, Counter] = {}
    for v, s in zip(vectors, scores.tolist(), strict=True):
        by_score.setdefault(s, Counter())[v] += 1
    for s, freq in by_score.items():
        support = [v for v in itertools.product(range(4), repeat=5)
                   if sum(v) == 3 and sum(c * ORDERED_VALUES[w] for c, w in zip(v, words, strict=True)) == s]
        assert set(freq) == set(support), s
        expected = sum(freq.values()) / len(support)
        for v in support:
            assert abs(freq[v] - expected) < 6 * expected**0.5 + 1, (s, v, freq[v], expected)


@pytest.mark.parametrize("kw", [
    dict(num_classes=2, length=6, uniform_score=True),
    dict(task="ordered", num_classes=2, length=6, min_length=6, uniform_score=True, extreme_words=True),
])
def test_uniform_score_positions_are_exchangeable(kw):
    # the words are placed by a uniform shuffle: every position has the same word distribution
    cfg = SyntheticConfig(**kw, balance=False)
    ds = generate(cfg, 12_000, gen(14))
    onehot = torch.nn.functional.one_hot(ds.tokens, ds.vocab_size).double()  # [N, T, V]
    per_pos = onehot.mean(0)
    assert (per_pos - per_pos.mean(0, keepdim=True)).abs().max() < 0.03


def test_uniform_score_ordered_without_extremes_spans_minus_l_to_l():
    cfg = SyntheticConfig(task="ordered", num_classes=2, length=9, uniform_score=True, balance=False)
    ds = generate(cfg, 9500, gen(12))
    hist = torch.bincount(evidence_scores(ds, cfg).long() + 9, minlength=19)
    assert hist.shape[0] == 19 and abs(hist.double() / 500 - 1).max() < 0.25


# ------------------------------------------------------------------------------------------------------ context words


def test_context_word_constraints_hold():
    cfg = SyntheticConfig(task="ordered", num_classes=3, length=40, context_words=True, extreme_words=True,
                          balance=False)
    ds = generate(cfg, 2000, gen(13))
    not_id, ext_id = ds.vocab.index("not"), ds.vocab.index("extremely")
    is_not, is_ext = ds.tokens == not_id, ds.tokens == ext_id
    for d in (1, 2, 3):
        assert not bool((is_not[:, d:] & is_not[:, :-d]).any()), f"`not` {d} tokens after a `not`"
    assert bool((is_not[:, 4:] & is_not[:, :-4]).any())  # 4 apart is allowed and happens
    assert not bool((is_ext[:, 1:] & is_ext[:, :-1]).any())
    # position 0 has no history: all 7 words equally likely
    first = torch.bincount(ds.tokens[:, 0], minlength=8)[1:].double() / 2000
    assert torch.allclose(first, torch.full((7,), 1 / 7, dtype=torch.float64), atol=0.03)
    # right after `not`: `not` is excluded, the other 6 words share the mass evenly
    after = torch.bincount(ds.tokens[:, 1:][is_not[:, :-1]], minlength=8)[1:].double()
    after = after / after.sum()
    assert after[not_id - 1] == 0 and torch.allclose(after[after > 0], torch.full((6,), 1 / 6, dtype=torch.float64),
                                                     atol=0.03)


def test_not_flips_and_extremely_doubles():
    cfg = SyntheticConfig(task="ordered", num_classes=2, length=6, context_words=True, extreme_words=True)
    vocab = vocabulary(cfg)

    def score(words: list[str]) -> float:
        ids = torch.tensor([[vocab.index(w) for w in words]])
        ds = TextDataset(ids, torch.tensor([len(words)]), torch.tensor([0]), vocab, ["Bad", "Good"])
        return float(evidence_scores(ds, cfg)[0])

    assert score(["not", "good", "good", "good", "good", "the"]) == -3 + 1
    assert score(["extremely", "awesome", "good", "the", "the", "the"]) == 4 + 1
    assert score(["not", "extremely", "good", "awful", "good", "bad"]) == -2 + 2 + 1 - 1


# --------------------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_tensors_and_splits_are_independent():
    cfg = SyntheticConfig(task="categorical", num_classes=4, length=15, min_length=5, context_words=True,
                          correlations={"01": 0.5}, n_train=300, n_val=100, n_test=100)
    a, b = make_splits(cfg, seed=7), make_splits(cfg, seed=7)
    for (name, x), (_, y) in zip(a, b, strict=True):
        assert torch.equal(x.tokens, y.tokens) and torch.equal(x.labels, y.labels), name
        assert torch.equal(x.lengths, y.lengths) and torch.equal(x.meta["corr_coins"], y.meta["corr_coins"])
        assert x.meta["split"] == name and x.meta["seed"] == 7
    assert not torch.equal(a.val.tokens, a.test.tokens)
    c = make_splits(cfg, seed=8)
    assert not torch.equal(a.train.tokens, c.train.tokens)
    g1, g2 = gen(3), gen(3)
    u = SyntheticConfig(task="ordered", num_classes=5, length=20, uniform_score=True, extreme_words=True)
    assert torch.equal(generate(u, 200, g1).tokens, generate(u, 200, g2).tokens)


def test_global_rng_state_is_not_used():
    cfg = SyntheticConfig(num_classes=3, length=10)
    torch.manual_seed(0)
    x = generate(cfg, 100, gen(1))
    torch.manual_seed(123)
    y = generate(cfg, 100, gen(1))
    assert torch.equal(x.tokens, y.tokens)


# ---------------------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kw,msg", [
    (dict(task="ordered", num_classes=4), "ordered tasks support num_classes 2, 3 or 5, got 4"),
    (dict(num_classes=3, bogus=1), "Extra inputs are not permitted"),
    (dict(task="categorical", extreme_words=True), "applies to task 'ordered' only"),
    (dict(task="ordered", num_classes=3, correlations={"01": 0.5}), "correlations applies to task 'categorical'"),
    (dict(task="ordered", num_classes=3, multilabel=True), "multilabel applies to task 'categorical'"),
    (dict(num_classes=3, correlations={"03": 0.5}), "needs two different classes in 0..2"),
    (dict(num_classes=3, correlations={"0x": 0.5}), "expected two class indices"),
    (dict(num_classes=3, correlations={"01": 0.5, "10": 0.2}), "pair listed twice"),
    (dict(num_classes=3, correlations={"01": 1.5}), "expected a fraction in"),
    (dict(length=10, min_length=11), "min_length \\(11\\) must be <= length \\(10\\)"),
    (dict(uniform_score=True, context_words=True), "cannot be combined"),
    (dict(num_classes=11, multilabel=True), "multilabel supports num_classes <= 10"),
    (dict(task="ordered", num_classes=5, uniform_score=True, extreme_words=True, length=101), "length <= 100"),
    (dict(num_classes=1), "greater than or equal to 2"),
])
def test_config_validation_errors(kw, msg):
    with pytest.raises(ValidationError, match=msg):
        SyntheticConfig(**kw)


def test_bad_inputs_raise_innerworks_errors():
    cfg = SyntheticConfig(num_classes=3, length=10, correlations={"01": 0.5})
    with pytest.raises(ConfigError, match="positive integer"):
        generate(cfg, 0, gen(0))
    ds = generate(cfg, 30, gen(0))
    # subset() keeps per-document meta (the correlation coins) aligned with the rows it selects
    assert torch.equal(evidence_scores(ds.subset(torch.arange(10)), cfg), evidence_scores(ds, cfg)[:10])
    stale = ds.subset(torch.arange(10))
    stale.meta["corr_coins"] = ds.meta["corr_coins"]
    with pytest.raises(DataError, match="corr_coins"):
        evidence_scores(stale, cfg)
    with pytest.raises(DataError, match="vocabulary"):
        evidence_scores(ds, SyntheticConfig(num_classes=4))
