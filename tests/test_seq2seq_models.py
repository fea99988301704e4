"""Sequence-to-sequence models: shapes, masks, the activation cache, decoding, metrics, bad input, and real training."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from innerworks.data.types import Seq2SeqDataset
from innerworks.errors import ConfigError, InnerworksError
from innerworks.models.hooks import HOOK_NAMES, describe, head_slice
from innerworks.models.seq2seq import ARCHS, Seq2SeqBatch, Seq2SeqConfig, build_seq2seq
from innerworks.models.seq2seq_metrics import bleu, phrase_accuracy, sequence_loss, word_accuracy

SRC_V, TGT_V = 7, 8  # 5 source words, 5 target words
RECURRENT = [a for a in ARCHS if a != "transformer"]
ATTENTIVE = [a for a in ARCHS if a != "ved"]


def small_cfg(arch: str, **kw) -> Seq2SeqConfig:
    base = dict(arch=arch, hidden_size=8, qk_size=4, num_heads=2, input_dim=12, d_model=8, d_ff=16, num_layers=2)
    base.update(kw)
    return Seq2SeqConfig(**base)


def make_batch(lengths: list[int], width: int | None = None, seed: int = 0, vocab: int = SRC_V,
               first_word: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of random words ending with <eos>=1, then <pad>=0; lengths count the <eos>."""
    g = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    out = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        out[i, : n - 1] = torch.randint(first_word, vocab, (n - 1,), generator=g)
        out[i, n - 1] = 1
    return out, torch.tensor(lengths)


@pytest.fixture(scope="module")
def batch() -> Seq2SeqBatch:
    src, sl = make_batch([5, 2, 4], seed=1)
    tgt, tl = make_batch([4, 3, 1], vocab=TGT_V, first_word=3, seed=2)
    return Seq2SeqBatch(src, sl, tgt, tl)


@pytest.mark.parametrize("arch", ["ved", "aed", "ao"])
def test_uniform_bos_is_the_step0_input_in_both_decoding_modes(arch: str, batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg(arch, bos="uniform"), SRC_V, TGT_V, seed=3)
    token_model = build_seq2seq(small_cfg(arch), SRC_V, TGT_V, seed=3)
    src, sl = batch.src, batch.src_lengths
    for tf in (False, True):
        _, cache = model.run_with_cache(batch, teacher_forcing=tf, max_len=4)
        x0 = cache["decoder.hook_input"][:, 0]
        if arch == "ao":  # AO adds the rotated position-0 encoding to the start vector
            x0 = x0 - model.positions(1)[0]
        want = torch.zeros(x0.shape[-1])
        want[:TGT_V] = 1.0 / TGT_V
        assert torch.allclose(x0, want.expand_as(x0), atol=1e-6)
        assert torch.equal(cache["decoder.hook_tokens"][:, 0], torch.full((3,), 2))  # still keyed as <bos>
    # with teacher forcing only step 0 differs from the <bos>-token model's inputs
    _, tf_cache = model.run_with_cache(batch, teacher_forcing=True)
    _, token_cache = token_model.run_with_cache(batch, teacher_forcing=True)
    assert torch.equal(tf_cache["decoder.hook_input"][:, 1:], token_cache["decoder.hook_input"][:, 1:])
    greedy = model(src, sl, max_len=5)
    assert torch.allclose(model(src, sl, tgt=greedy.argmax(-1), teacher_forcing=True), greedy, atol=1e-5)
    assert not torch.allclose(greedy, token_model(src, sl, max_len=5))  # the start input matters
    with pytest.raises(ValidationError, match="one-hot"):
        small_cfg("aed", bos="uniform", embed_dim=4)


# ---- shapes, names and masks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_shapes_and_canonical_names(arch: str, teacher_forcing: bool, batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg(arch), SRC_V, TGT_V, seed=0)
    b, s, t = 3, batch.src.shape[1], batch.tgt.shape[1]
    logits, cache = model.run_with_cache(batch, teacher_forcing=teacher_forcing)
    assert logits.shape == (b, t, TGT_V)
    assert set(cache) == set(model.hook_names())
    for name in cache:
        describe(name)  # every cached name is documented
        assert not cache[name].requires_grad
    assert set(HOOK_NAMES) - {"encoder.hook_full_states", "decoder.hook_full_states"} - set(cache) == (
        set() if arch != "ved" else {n for n in HOOK_NAMES if n.startswith("attn.")})
    h = 8 if arch != "transformer" else 8
    assert cache["encoder.hook_states"].shape == (b, s, h)
    assert cache["decoder.hook_states"].shape == (b, t, h)
    assert cache["encoder.hook_input"].shape[:2] == (b, s) and cache["decoder.hook_input"].shape[:2] == (b, t)
    tokens = cache["decoder.hook_tokens"]
    assert tokens.shape == (b, t) and bool((tokens[:, 0] == 2).all())
    fed = batch.tgt if teacher_forcing else logits.argmax(-1)
    assert torch.equal(tokens[:, 1:], fed[:, :-1])
    assert torch.equal(cache["logits"], logits)
    if arch == "ved":
        assert model.attn_heads == 0 and model.attn_scale is None
        return
    nh = model.attn_heads
    assert nh == (2 if arch.endswith("mha") or arch == "transformer" else 1)
    pattern = (b, t, s) if nh == 1 else (b, nh, t, s)
    assert cache["attn.hook_scores"].shape == pattern and cache["attn.hook_weights"].shape == pattern
    assert cache["attn.hook_q"].shape[:3] == (b, nh, t) and cache["attn.hook_k"].shape[:3] == (b, nh, s)
    assert cache["attn.hook_q"].shape[-1] == cache["attn.hook_k"].shape[-1]
    assert cache["attn.hook_context"].shape[:2] == (b, t)


@pytest.mark.parametrize("cell", ["gru", "lstm", "ugrnn", "vanilla", "gru_renn"])
def test_cells_and_lstm_flat_state(cell: str, batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg("aed", cell=cell), SRC_V, TGT_V, seed=0)
    _, cache = model.run_with_cache(batch, teacher_forcing=True)
    state = 16 if cell == "lstm" else 8
    assert cache["encoder.hook_full_states"].shape[-1] == state
    assert cache["decoder.hook_full_states"].shape[-1] == state
    # h^E is the h half of the flat state; the decoder starts from the final encoder state.
    assert torch.equal(cache["encoder.hook_states"], cache["encoder.hook_full_states"][..., :8])
    h0 = cache["encoder.hook_full_states"][:, -1]
    x0 = cache["decoder.hook_input"][:, 0]
    step0 = model.decoder(x0, h0)
    assert torch.allclose(step0, cache["decoder.hook_full_states"][:, 0], atol=1e-5)


@pytest.mark.parametrize("arch", RECURRENT)
def test_encoder_state_frozen_after_eos(arch: str) -> None:
    model = build_seq2seq(small_cfg(arch, cell="lstm" if arch == "aed" else "gru"), SRC_V, TGT_V, seed=3)
    src, sl = make_batch([3, 6, 1], seed=4)
    _, cache = model.run_with_cache((src, sl), max_len=5)
    hs = cache["encoder.hook_full_states"]
    for i, n in enumerate(sl.tolist()):
        assert torch.equal(hs[i, n - 1:], hs[i, n - 1].expand_as(hs[i, n - 1:]))
    # Whatever sits after <eos> (extra padding, even stray words) changes nothing.
    noisy = torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    noisy[0, 3:] = 4
    logits2, cache2 = model.run_with_cache((noisy, sl), max_len=5)
    assert torch.allclose(cache2["logits"], cache["logits"], atol=1e-6)
    assert torch.allclose(cache2["encoder.hook_states"][:, :6], cache["encoder.hook_states"], atol=1e-6)


@pytest.mark.parametrize("arch", ATTENTIVE)
def test_attention_weights_masked_and_normalised(arch: str, batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg(arch), SRC_V, TGT_V, seed=0)
    names = ["attn.hook_weights"] + [n for n in model.hook_names() if n.endswith("cross_attn.hook_weights")]
    for tf in (False, True):
        _, cache = model.run_with_cache(batch, names_filter=names, teacher_forcing=tf)
        assert set(cache) == set(names)
        for name in names:
            w = cache[name]
            for h in range(model.attn_heads):
                wh = head_slice(cache, name, h)  # [B, T, S]
                valid = torch.arange(wh.shape[-1]).unsqueeze(0) < batch.src_lengths.unsqueeze(1)  # [B, S]
                assert bool((wh.masked_select(~valid.unsqueeze(1).expand_as(wh)) == 0).all()), name
                assert torch.allclose(wh.sum(-1), torch.ones(wh.shape[:2]), atol=1e-6), name
            assert bool((w >= 0).all())
    # The padded (EOS-only) row can still attend its <eos>.
    src, sl = make_batch([1, 3])
    _, cache = model.run_with_cache((src, sl), names_filter="attn.hook_weights", max_len=2)
    assert torch.allclose(head_slice(cache, "attn.hook_weights")[0, :, 0], torch.ones(2))


@pytest.mark.parametrize("arch", ATTENTIVE)
def test_scores_are_scale_times_q_dot_k(arch: str, batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg(arch), SRC_V, TGT_V, seed=0)
    scale = model.attn_scale
    assert isinstance(scale, float)
    expect = {"aed": 1.0, "ao": 1.0}.get(arch, 4 ** -0.5)  # qk_size 4; transformer head size 8 // 2 = 4
    assert scale == pytest.approx(expect)
    for tf in (True, False):
        _, cache = model.run_with_cache(batch, teacher_forcing=tf)
        q, k = cache["attn.hook_q"], cache["attn.hook_k"]
        raw = q @ k.transpose(-2, -1)
        recomputed = raw if scale == 1.0 else raw * scale
        scores = cache["attn.hook_scores"]
        if scores.dim() == 3:
            recomputed = recomputed[:, 0]
        if tf:  # one batched matmul in the model too: bit-for-bit identical
            assert torch.equal(scores, recomputed)
        assert torch.allclose(scores, recomputed, atol=1e-6, rtol=1e-6)
        if arch in ("aed", "ao"):  # plain dot attention: q = h^D, k = h^E
            assert torch.equal(q[:, 0], cache["decoder.hook_states"])
            assert torch.equal(k[:, 0], cache["encoder.hook_states"])
    if arch == "transformer":  # the attn.* names alias the last layer's cross-attention
        last = model.cfg.num_layers - 1
        for n in ("q", "k", "scores", "weights"):
            assert torch.equal(cache[f"attn.hook_{n}"], cache[f"blocks.{last}.cross_attn.hook_{n}"])


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_equals_stepwise_and_teacher_forcing_on_its_own_output(arch: str, batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg(arch), SRC_V, TGT_V, seed=5)
    src, sl = batch.src, batch.src_lengths
    greedy_logits = model(src, sl, max_len=6)
    pred = greedy_logits.argmax(-1)
    assert torch.equal(model.greedy_decode(src, sl, max_len=6), pred)
    # Feeding the greedy predictions back with teacher forcing (fused scan / one pass) reproduces the greedy run.
    tf_logits = model(src, sl, tgt=pred, teacher_forcing=True)
    assert torch.allclose(tf_logits, greedy_logits, atol=1e-5)
    # An explicit step-by-step loop over prefixes gives the same tokens.
    tokens = torch.full((3, 1), 2)
    for _ in range(6):
        step = model(src, sl, tgt=torch.cat([tokens[:, 1:], torch.zeros(3, 1, dtype=torch.long)], 1),
                     teacher_forcing=True)
        tokens = torch.cat([tokens, step[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(tokens[:, 1:], pred)


def test_names_filter_bounds_the_cache(batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg("aed_mha"), SRC_V, TGT_V, seed=0)
    full_logits, full = model.run_with_cache(batch)
    logits, cache = model.run_with_cache(batch, names_filter=["attn.hook_q", "attn.hook_k"])
    assert sorted(cache) == ["attn.hook_k", "attn.hook_q"]
    assert torch.equal(logits, full_logits) and torch.equal(cache["attn.hook_q"], full["attn.hook_q"])
    _, cache = model.run_with_cache(batch, names_filter=lambda n: n.startswith("encoder."))
    assert sorted(cache) == ["encoder.hook_full_states", "encoder.hook_input", "encoder.hook_states"]
    _, cache = model.run_with_cache(batch, names_filter="logits")
    assert list(cache) == ["logits"]
    _, cache = model.run_with_cache(batch, names_filter=[])
    assert cache == {}
    with pytest.raises(InnerworksError, match="unknown hook name 'attn.hook_pattern'"):
        model.run_with_cache(batch, names_filter=["attn.hook_pattern"])
    ved = build_seq2seq(small_cfg("ved"), SRC_V, TGT_V)
    with pytest.raises(InnerworksError, match="unknown hook name 'attn.hook_weights'"):
        ved.run_with_cache(batch, names_filter=["attn.hook_weights"])


def test_build_is_seeded_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_seq2seq(small_cfg("ao"), SRC_V, TGT_V, seed=7)
    after = torch.rand(1)
    b = build_seq2seq(small_cfg("ao"), SRC_V, TGT_V, seed=7)
    c = build_seq2seq(small_cfg("ao"), SRC_V, TGT_V, seed=8)
    assert torch.equal(before, after)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["pe_rotation"], sc["pe_rotation"])
    r = sa["pe_rotation"]
    assert torch.allclose(r @ r.T, torch.eye(12), atol=1e-5)


def test_ao_positional_encoding_is_rotated_sinusoid() -> None:
    model = build_seq2seq(small_cfg("ao", pe_scale=20.0, pe_amplitude=2.0), SRC_V, TGT_V, seed=0)
    src, sl = make_batch([4])
    _, cache = model.run_with_cache((src, sl), names_filter=["encoder.hook_input"], max_len=1)
    onehot = torch.nn.functional.one_hot(src[0], 12).float() * (src[0] != 0).float()[:, None]
    pe = cache["encoder.hook_input"][0] - onehot
    unrotated = pe @ model.pe_rotation.T
    t = torch.arange(4).float()
    assert torch.allclose(unrotated[:, 0], 2.0 * torch.sin(t), atol=1e-5)
    assert torch.allclose(unrotated[:, 1], 2.0 * torch.cos(t), atol=1e-5)
    assert torch.allclose(unrotated[:, 2], 2.0 * torch.sin(t / 20.0 ** (2 / 12)), atol=1e-5)


# ---- metrics ------------------------------------------------------------------------------------------------------

def test_metrics_on_hand_made_examples() -> None:
    tgt = torch.tensor([[3, 4, 1, 0], [5, 1, 0, 0], [6, 6, 6, 1]])
    lengths = torch.tensor([3, 2, 4])
    pred = torch.tensor([[3, 4, 1, 7], [5, 1, 4, 4], [6, 5, 6, 1]])  # after-EOS junk is ignored; row 2 has 1 error
    assert phrase_accuracy(pred, tgt, lengths) == pytest.approx(2 / 3)
    assert word_accuracy(pred, tgt, lengths) == pytest.approx(8 / 9)
    assert phrase_accuracy(tgt, tgt, lengths) == 1.0 and word_accuracy(tgt, tgt, lengths) == 1.0
    short = pred[:, :2]  # a prediction shorter than the target is wrong where it is missing
    assert phrase_accuracy(short, tgt, lengths) == pytest.approx(1 / 3)  # only row 1 is complete in 2 tokens
    assert word_accuracy(short, tgt, lengths) == pytest.approx(5 / 9)
    # An EOS predicted too early is an error.
    assert phrase_accuracy(torch.tensor([[3, 1, 1, 0]]), tgt[:1], lengths[:1]) == 0.0


def test_bleu_identical_is_100_and_disjoint_is_0() -> None:
    vocab = ["<pad>", "<eos>", "<bos>"] + [f"w{i}" for i in range(20)]
    ref = torch.tensor([[3, 4, 5, 6, 7, 8, 1, 0], [9, 10, 11, 12, 13, 1, 0, 0]])
    assert bleu(ref, ref, vocab) == pytest.approx(100.0)
    after_eos = ref.clone()
    after_eos[1, 6:] = 20  # tokens after <eos> are not part of the sentence
    assert bleu(after_eos, ref, vocab) == pytest.approx(100.0)
    disjoint = torch.tensor([[14, 15, 16, 17, 18, 19, 1, 0], [20, 21, 22, 14, 15, 1, 0, 0]])
    assert bleu(disjoint, ref, vocab) == pytest.approx(0.0)
    partial = bleu(torch.tensor([[3, 4, 5, 6, 7, 19, 1, 0], [9, 10, 11, 12, 13, 1, 0, 0]]), ref, vocab)
    assert 0.0 < partial < 100.0


def test_sequence_loss_ignores_positions_after_eos() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, generator=g)
    tgt = torch.tensor([[3, 1, 0, 0], [4, 5, 3, 1]])
    lengths = torch.tensor([2, 4])
    loss = sequence_loss(logits, tgt, lengths)
    changed = logits.clone()
    changed[0, 2:] = 100.0
    assert torch.equal(sequence_loss(changed, tgt, lengths), loss)
    manual = torch.cat([torch.nn.functional.cross_entropy(logits[0, :2], tgt[0, :2], reduction="none"),
                        torch.nn.functional.cross_entropy(logits[1], tgt[1], reduction="none")]).mean()
    assert torch.allclose(loss, manual)


# ---- bad input ----------------------------------------------------------------------------------------------------

def test_bad_inputs_give_clear_errors(batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg("aed", max_len=10), SRC_V, TGT_V)
    src, sl = batch.src, batch.src_lengths
    bad = src.clone()
    bad[1, 0] = SRC_V
    with pytest.raises(InnerworksError, match=r"src: unknown token id 7 at row 1, position 0"):
        model(bad, sl)
    bad_tgt = batch.tgt.clone()
    bad_tgt[0, 1] = -1
    with pytest.raises(InnerworksError, match=r"tgt: unknown token id -1"):
        model(src, sl, bad_tgt, teacher_forcing=True)
    with pytest.raises(InnerworksError, match="empty sequence at row 2"):
        model(src, torch.tensor([5, 2, 0]))
    with pytest.raises(InnerworksError, match="is empty"):
        model(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    long_src, long_sl = make_batch([12])
    with pytest.raises(InnerworksError, match="over-length: 12 positions.*max_len=10"):
        model(long_src, long_sl)
    with pytest.raises(InnerworksError, match="decoding length must be in 1..max_len=10"):
        model(src, sl, max_len=11)
    with pytest.raises(InnerworksError, match=r"row 0 must end with <eos>"):
        model(src, torch.tensor([4, 2, 4]))
    with pytest.raises(InnerworksError, match="exceeds the padded width"):
        model(src, torch.tensor([9, 2, 4]))
    with pytest.raises(InnerworksError, match="LongTensor"):
        model(src.float(), sl)
    with pytest.raises(InnerworksError, match="teacher forcing needs tgt"):
        model(src, sl, teacher_forcing=True)
    with pytest.raises(InnerworksError, match="batch must be"):
        model.run_with_cache(src)


def test_vocabulary_mismatch_is_reported(batch: Seq2SeqBatch) -> None:
    model = build_seq2seq(small_cfg("aed"), SRC_V, TGT_V)
    src_vocab = ["<pad>", "<eos>"] + [f"I{i}" for i in range(SRC_V - 2)]
    tgt_vocab = ["<pad>", "<eos>", "<bos>"] + [f"O{i}" for i in range(TGT_V - 3)]
    ok = Seq2SeqDataset(batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths, src_vocab, tgt_vocab)
    logits, _ = model.run_with_cache(ok, names_filter=[])
    assert logits.shape[0] == 3
    bigger = Seq2SeqDataset(batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths, src_vocab,
                            tgt_vocab + ["O9"])
    with pytest.raises(InnerworksError, match="vocabulary mismatch: the model's target vocabulary has 8 ids, the "
                                              "data's 9"):
        model.run_with_cache(bigger)
    swapped = ["<eos>", "<pad>"] + src_vocab[2:]
    with pytest.raises(InnerworksError, match="source vocabulary must start with <pad>, <eos>"):
        model.check_vocab(swapped, tgt_vocab)
    with pytest.raises(InnerworksError, match="target vocabulary needs <pad>, <eos>, <bos>"):
        build_seq2seq(small_cfg("aed"), SRC_V, 3)


def test_bad_configs_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="field 'model.arch'"):
        build_seq2seq({"arch": "lstm_attention"}, SRC_V, TGT_V)
    with pytest.raises(ConfigError, match="field 'model.hidden_sizes'"):
        build_seq2seq({"hidden_sizes": 8}, SRC_V, TGT_V)
    with pytest.raises(ConfigError, match="field 'model.num_heads'.*divisible"):
        build_seq2seq({"arch": "aed_mha", "hidden_size": 9, "num_heads": 2}, SRC_V, TGT_V)
    with pytest.raises(ConfigError, match="field 'model.d_model'"):
        build_seq2seq({"arch": "transformer", "d_model": 10, "num_heads": 3}, SRC_V, TGT_V)
    with pytest.raises(ConfigError, match="field 'model.input_dim'"):
        build_seq2seq({"arch": "ao", "input_dim": 4}, SRC_V, TGT_V)


# ---- a real training run ------------------------------------------------------------------------------------------

def one_to_one(n: int, seed: int, num_words: int = 3, min_len: int = 4, max_len: int = 6) -> Seq2SeqBatch:
    """The notes' one-to-one task: I_i -> O_i at the same position; lengths min_len..max_len words plus <eos>."""
    g = torch.Generator().manual_seed(seed)
    words_len = torch.randint(min_len, max_len + 1, (n,), generator=g)
    width = max_len + 1
    words = torch.randint(0, num_words, (n, width), generator=g)
    valid = torch.arange(width).unsqueeze(0) < words_len.unsqueeze(1)
    rows = torch.arange(n)
    src = torch.where(valid, words + 2, 0)
    tgt = torch.where(valid, words + 3, 0)
    src[rows, words_len] = 1
    tgt[rows, words_len] = 1
    return Seq2SeqBatch(src, words_len + 1, tgt, words_len + 1)


# arch -> (config, learning rate, Adam steps); one fixed seed each. All reach 100% phrase accuracy on the held-out
# set in these runs (AO at this small size is seed-sensitive: some seeds sit on a plateau for > 600 steps).
TRAINING = {
    "aed": (dict(arch="aed", hidden_size=32), 1e-2, 300),
    "ao": (dict(arch="ao", hidden_size=32, input_dim=16), 1e-2, 400),
    "transformer": (dict(arch="transformer", d_model=32, d_ff=64, num_layers=1, positions="learned"), 1e-3, 200),
}


@pytest.fixture(scope="module", params=sorted(TRAINING))
def trained(request) -> tuple[str, torch.nn.Module, Seq2SeqBatch, dict[str, float]]:
    """A small model trained with teacher forcing on one-to-one (N=3, 4-6 words), then greedy-decoded."""
    arch = request.param
    cfg, lr, steps = TRAINING[arch]
    model = build_seq2seq(Seq2SeqConfig(**cfg, teacher_forcing=True), 5, 6, seed=0)
    train, test = one_to_one(4000, seed=1), one_to_one(500, seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(4000, (64,), generator=g)
        logits = model(train.src[idx], train.src_lengths[idx], train.tgt[idx], teacher_forcing=True)
        loss = sequence_loss(logits, train.tgt[idx], train.tgt_lengths[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model.greedy_decode(test.src, test.src_lengths, max_len=test.tgt.shape[1])
    acc = {"phrase": phrase_accuracy(pred, test.tgt, test.tgt_lengths),
           "word": word_accuracy(pred, test.tgt, test.tgt_lengths)}
    return arch, model, test, acc


def test_models_learn_one_to_one(trained) -> None:
    arch, _, _, acc = trained
    assert acc["phrase"] >= 0.95, (arch, acc)
    assert acc["word"] >= 0.99, (arch, acc)


def test_teacher_forcing_matches_greedy_when_the_model_is_perfect(trained) -> None:
    arch, model, test, _ = trained
    with torch.no_grad():
        greedy = model(test.src, test.src_lengths, max_len=test.tgt.shape[1])
        forced = model(test.src, test.src_lengths, test.tgt, teacher_forcing=True)
    steps = torch.arange(test.tgt.shape[1])
    correct = (greedy.argmax(-1) == test.tgt) | (steps >= test.tgt_lengths[:, None])
    perfect = correct.all(dim=1)
    assert int(perfect.sum()) >= 475
    # Same tokens fed up to <eos>, so the same logits there (greedy steps the cell; teacher forcing scans).
    mask = (steps < test.tgt_lengths[:, None]) & perfect[:, None]
    assert torch.allclose(greedy[mask], forced[mask], atol=1e-4)
    _, cache_g = model.run_with_cache(test, names_filter=["decoder.hook_tokens"])
    _, cache_t = model.run_with_cache(test, names_filter=["decoder.hook_tokens"], teacher_forcing=True)
    assert torch.equal(cache_g["decoder.hook_tokens"][mask], cache_t["decoder.hook_tokens"][mask])



# ---- the seq2seq training task ------------------------------------------------------------------------------------

def test_seq2seq_task_through_the_training_loop(tmp_path) -> None:
    from innerworks.train import get_task, load_run, parse_recipe, train

    task = get_task("seq2seq")
    assert task.primary_metric == "phrase_accuracy"
    recipe = parse_recipe({
        "name": "s2s", "task": "seq2seq", "seed": 0,
        "data": {"task": "one_to_one", "num_words": 3, "min_length": 4, "max_length": 6, "n_train": 2000,
                 "n_val": 100, "n_test": 200},
        "model": {"arch": "aed", "hidden_size": 32, "teacher_forcing": True},
        "train": {"steps": 300, "batch_size": 64, "lr": 0.01, "eval_every": 150, "checkpoint_every": 150},
    })
    result = train(recipe, tmp_path / "run", progress=False)
    test = result.metrics["test"]
    assert set(test) >= {"phrase_accuracy", "word_accuracy", "loss"} and "bleu" not in test
    assert test["phrase_accuracy"] >= 0.9, test
    run = load_run(tmp_path / "run")
    assert isinstance(run.model, type(result.model))
    batch = run.data.test.subset(slice(0, 8))
    a, cache_a = run.model.run_with_cache(batch, names_filter=["attn.hook_weights"])
    b, cache_b = result.model.eval().run_with_cache(batch, names_filter=["attn.hook_weights"])
    assert torch.equal(a, b) and torch.equal(cache_a["attn.hook_weights"], cache_b["attn.hook_weights"])


def test_seq2seq_task_batches_errors_and_bleu() -> None:
    from innerworks.attention.task import Seq2SeqTask

    task = Seq2SeqTask()
    with pytest.raises(ConfigError, match="field 'num_word'"):
        task.validate_data({"task": "one_to_one", "num_word": 3})
    data = task.build_data(task.validate_data({"task": "reversal", "min_length": 3, "max_length": 5, "n_train": 50,
                                               "n_val": 10, "n_test": 10}), seed=1, run_dir=None)
    b1 = task.sample_batch(data.train, 16, torch.Generator().manual_seed(3))
    b2 = task.sample_batch(data.train, 16, torch.Generator().manual_seed(3))
    assert torch.equal(b1.src, b2.src) and torch.equal(b1.tgt, b2.tgt)
    assert b1.src.shape[1] == int(b1.src_lengths.max()) and b1.tgt.shape[1] == int(b1.tgt_lengths.max())
    model = task.build_model(Seq2SeqConfig(arch="ao", hidden_size=8), data)
    assert model.cfg.arch == "ao" and model.src_vocab_size == len(data.train.src_vocab)
    loss = task.loss(model, b1, torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and model.readout.weight.grad is not None
    with pytest.raises(ConfigError, match="field 'model.max_len'"):
        task.build_model(Seq2SeqConfig(arch="aed", hidden_size=8, max_len=4), data)
    # A model trained for one task refuses another task's data.
    other = task.build_data(task.validate_data({"task": "escan", "n_train": 5, "n_val": 5, "n_test": 5}), 0, None)
    with pytest.raises(InnerworksError, match="vocabulary mismatch"):
        task.evaluate(model, other.val, torch.device("cpu"))
    # Translation data adds BLEU; reference-vs-reference through the same vocabulary is 100.
    tr = task.build_data(task.validate_data({"task": "translation", "corpus": "multi30k", "max_pairs": 200,
                                             "max_length": 12}), seed=0, run_dir=None)
    model = task.build_model(Seq2SeqConfig(arch="aed", hidden_size=8, embed_dim=8), tr)
    with torch.no_grad():
        metrics = task.evaluate(model.eval(), tr.val, torch.device("cpu"))
    assert 0.0 <= metrics["bleu"] <= 100.0 and metrics["phrase_accuracy"] <= metrics["word_accuracy"]
    assert bleu(tr.val.tgt, tr.val.tgt, tr.tgt_vocab) == pytest.approx(100.0)
