"""Seq2seq tasks: synthetic rules, the SCAN grammar against the official files, eSCAN, translation, bad input."""

from __future__ import annotations

import doctest
import gzip
import importlib
import json
import math
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import torch

from innerworks.data import scan_grammar, seq2seq
from innerworks.data.scan_grammar import enumerate_commands, interpret, is_command
from innerworks.data.seq2seq import (
    PERIOD,
    Seq2SeqTaskConfig,
    Seq2SeqVocab,
    check_vocab_match,
    encode_pairs,
    escan_alignment,
    escan_commands,
    escan_offsets,
    load_translation_pairs,
    make_escan,
    make_seq2seq_splits,
    make_synthetic,
    parse_task_config,
    read_scan_file,
)
from innerworks.data.seq2seq.escan import _escan_subset
from innerworks.data.seq2seq.translation import split_grouped
from innerworks.data.types import Seq2SeqDataset
from innerworks.errors import ConfigError, DataError

SRC = ["<pad>", "<eos>", "a", "b"]
TGT = ["<pad>", "<eos>", "<bos>", "X", "Y"]


def assert_conventions(ds: Seq2SeqDataset) -> None:
    """Vocab specials, one <eos> at length-1, padding after, no specials inside a sequence."""
    assert ds.src_vocab[:2] == ["<pad>", "<eos>"] and ds.src_vocab[2] != "<bos>"
    assert ds.tgt_vocab[:3] == ["<pad>", "<eos>", "<bos>"]
    for x, n, n_special in ((ds.src, ds.src_lengths, 2), (ds.tgt, ds.tgt_lengths, 3)):
        pos = torch.arange(x.shape[1])[None]
        assert bool((x.gather(1, (n - 1)[:, None]) == 1).all()), "<eos> at length-1"
        assert bool((x[pos >= n[:, None]] == 0).all()), "padding after <eos>"
        assert bool((x[pos < (n - 1)[:, None]] >= n_special).all()), "no special token inside a sequence"


def words_of(ds: Seq2SeqDataset, r: int, side: str = "src") -> list[str]:
    x, n, v = (ds.src, ds.src_lengths, ds.src_vocab) if side == "src" else (ds.tgt, ds.tgt_lengths, ds.tgt_vocab)
    return [v[i] for i in x[r, : int(n[r]) - 1].tolist()]


def scan_files(root: Path) -> list[Path]:
    files = sorted((root / "scan").glob("*/*.txt.gz"))
    assert len(files) == 8, files
    return files


# ------------------------------------------------------------------------------------------------------ doctests
SEQ2SEQ_MODULES = [seq2seq, *(importlib.import_module(f"{seq2seq.__name__}.{m.name}")
                              for m in pkgutil.iter_modules(seq2seq.__path__))]


@pytest.mark.parametrize("module", [scan_grammar, *SEQ2SEQ_MODULES], ids=lambda m: m.__name__)
def test_doctests(module, data_root) -> None:
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted >= 1


def test_seq2seq_package_has_its_doctests() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for m in SEQ2SEQ_MODULES for t in finder.find(m))
    assert examples > 40  # the old single module held 52


# -------------------------------------------------------------------------------------------------- SCAN grammar
def test_grammar_generates_exactly_the_scan_commands(data_root) -> None:
    cmds = enumerate_commands()
    assert len(cmds) == len(set(cmds)) == 20910
    simple = {c for part in ("train", "test")
              for c, _ in read_scan_file(data_root / "scan/simple_split" / f"tasks_{part}_simple.txt.gz")}
    assert simple == set(cmds)  # the simple split's train + test cover SCAN's 20,910 commands exactly


def test_interpretation_agrees_with_every_line_of_the_shared_files(data_root) -> None:
    n = 0
    for path in scan_files(data_root):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                cmd, acts = line.rstrip("\n").removeprefix("IN: ").split(" OUT: ")
                assert interpret(cmd) == tuple(acts.split()), f"{path.name}:{lineno}"
                n += 1
    assert n == 87294


@pytest.mark.parametrize("bad", ["turn", "walk twice twice", "left walk", "walk and run and jump", "",
                                 "walk around", "jump opposite", "walk after", "twice"])
def test_ungrammatical_commands_raise(bad: str) -> None:
    assert not is_command(bad)
    with pytest.raises(DataError, match="not a SCAN command"):
        interpret(bad)


# ----------------------------------------------------------------------------------------------------- synthetic
@pytest.mark.parametrize("task", ["one_to_one", "reversal", "sort"])
def test_synthetic_rules_from_tokens(task: str) -> None:
    n, N, lo, hi = 3000, 5, 3, 9
    ds = make_synthetic(task, n, N, lo, hi, torch.Generator().manual_seed(1))
    assert_conventions(ds)
    assert ds.src_vocab == ["<pad>", "<eos>", *(f"I{i}" for i in range(N))]
    assert ds.tgt_vocab == ["<pad>", "<eos>", "<bos>", *(f"O{i}" for i in range(N))]
    assert ds.src_width == ds.tgt_width == hi + 1
    assert bool((ds.src_lengths == ds.tgt_lengths).all())
    assert set((ds.src_lengths - 1).tolist()) == set(range(lo, hi + 1))  # inclusive bounds, all reached
    for r in range(n):
        src = [int(w[1:]) for w in words_of(ds, r)]
        tgt = [int(w[1:]) for w in words_of(ds, r, "tgt")]
        assert all(w.startswith("O") for w in words_of(ds, r, "tgt"))
        expected = {"one_to_one": src, "reversal": src[::-1], "sort": sorted(src)}[task]
        assert tgt == expected, (r, src, tgt)
    counts = torch.bincount(ds.src[ds.src >= 2] - 2, minlength=N).float()
    assert float(counts.min() / counts.max()) > 0.9  # words i.i.d. uniform


def test_generated_tasks_are_deterministic_and_split_streams_independent() -> None:
    cfg = {"task": "reversal", "num_words": 4, "min_length": 2, "max_length": 6, "n_train": 50, "n_val": 20,
           "n_test": 20}
    a, b = make_seq2seq_splits(cfg, seed=7), make_seq2seq_splits(cfg, seed=7)
    c = make_seq2seq_splits(cfg, seed=8)
    d = make_seq2seq_splits({**cfg, "n_train": 80}, seed=7)
    for name in ("train", "val", "test"):
        assert torch.equal(a[name].src, b[name].src) and torch.equal(a[name].tgt, b[name].tgt)
        assert not torch.equal(a[name].src, c[name].src)
    assert torch.equal(a.val.src, d.val.src) and torch.equal(a.test.tgt, d.test.tgt)
    assert not torch.equal(a.train.src, a.val.src[:20].repeat(3, 1)[:50])
    e1 = make_seq2seq_splits({"task": "escan", "n_train": 30, "n_val": 5, "n_test": 5}, seed=3)
    e2 = make_seq2seq_splits({"task": "escan", "n_train": 30, "n_val": 5, "n_test": 5}, seed=3)
    assert torch.equal(e1.train.src, e2.train.src) and torch.equal(e1.test.tgt, e2.test.tgt)
    assert a.train.meta["task"] == "reversal" and a.train.meta["seed"] == 7 and a.train.meta["split"] == "train"


# ---------------------------------------------------------------------------------------------------------- eSCAN
@pytest.fixture(scope="module")
def escan() -> Seq2SeqDataset:
    return make_escan(20000, torch.Generator().manual_seed(0))


def test_escan_command_set() -> None:
    cmds = escan_commands()
    assert len(cmds) == 90 and len(_escan_subset()) == 156
    allowed = {"run", "walk", "jump", "left", "and", "twice"}
    assert all(set(c.split()) <= allowed and "left twice" not in c for c, _ in cmds)
    assert all(acts == interpret(c) for c, acts in cmds)


def test_escan_constraints(escan: Seq2SeqDataset) -> None:
    ds = escan
    assert_conventions(ds)
    assert set(ds.src_vocab[2:]) == {"run", "walk", "jump", "left", "and", "twice", PERIOD}
    assert set(ds.tgt_vocab[3:]) == {"I_RUN", "I_WALK", "I_JUMP", "I_TURN_LEFT", PERIOD}
    out_len, in_len = ds.tgt_lengths - 1, ds.src_lengths - 1
    assert int(out_len.min()) >= 10 and int(out_len.max()) <= 15 and int(in_len.max()) <= 27
    assert (ds.src_width, ds.tgt_width) == (19, 15)  # tight bounds: input <= 18, output <= 14
    kept = {c for c, _ in escan_commands()}
    seen = set()
    for r in range(0, len(ds), 7):
        src, tgt = words_of(ds, r), words_of(ds, r, "tgt")
        assert src[-1] == PERIOD and tgt[-1] == PERIOD
        assert src.count(PERIOD) == tgt.count(PERIOD)
        chunks = " ".join(src).split(f" {PERIOD}")[:-1]
        acts = " ".join(tgt).split(f" {PERIOD}")[:-1]
        for c, a in zip(chunks, acts, strict=True):
            c = c.strip()
            assert c in kept and "left twice" not in c
            assert tuple(a.split()) == interpret(c)
            seen.add(c)
        # stopping rule: the output before the last command was still short of 10
        assert len(tgt) - (len(acts[-1].split()) + 1) < 10
    assert seen == kept  # every kept command gets drawn
    assert ds.meta["escan_commands"] == 90 and ds.meta["rejected_overlength_input"] == 0


def test_escan_offsets_hand_worked() -> None:
    ds = encode_pairs(["jump left and run twice <.> walk <.>", "walk twice <.> run <.>"],
                      ["I_TURN_LEFT I_JUMP I_RUN I_RUN <.> I_WALK <.>", "I_WALK I_WALK <.> I_RUN <.>"],
                      *seq2seq.escan_vocabs())
    # row 0: TL<-left(1) JUMP<-jump(0) RUN<-run(3) RUN<-twice(4) .<-.(5) WALK<-walk(6) .<-.(7) eos<-eos(8)
    assert escan_alignment(ds).tolist() == [[1, 0, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, -1, -1]]
    assert escan_offsets(ds).tolist() == [0.5, -0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
    off = escan_offsets(ds, include_eos=False)
    assert off[:5].tolist() == [0.5, -0.5, 0.5, 0.5, 0.5] and off[5] == 1.0 and off[6] == 1.0
    assert math.isnan(float(off[7]))


def test_escan_alignment_reproduces_targets_and_mean_offsets(escan: Seq2SeqDataset) -> None:
    align = escan_alignment(escan)  # raises if any target disagrees with the alignment rule
    valid = align >= 0
    assert bool((valid.sum(1) == escan.tgt_lengths).all())
    src_tok = escan.src.gather(1, align.clamp(min=0))
    # periods align to periods, <eos> to <eos>
    per_s, per_t = escan.src_vocab.index(PERIOD), escan.tgt_vocab.index(PERIOD)
    assert bool((src_tok[escan.tgt == per_t] == per_s).all()) and bool((src_tok[escan.tgt == 1] == 1).all())
    off = escan_offsets(escan)
    assert off.shape == (escan.tgt_width,)
    # analytic under uniform sampling of the 90 commands: pos 0 = P(first S is "x left") = 1/3;
    # pos 1 = 1/3 * (-1) + 1/3 * 0 ("x twice") + 1/3 * 0.9 * (1 + 1/3) ("x and S") = 1/15
    assert abs(float(off[0]) - 1 / 3) < 0.02 and abs(float(off[1]) - 1 / 15) < 0.03
    assert float(off[-1]) > 2.5  # the lag grows with position ("and" adds +1 each)
    bad = encode_pairs(["run left <.>"], ["I_RUN I_TURN_LEFT <.>"], escan.src_vocab, escan.tgt_vocab)
    with pytest.raises(DataError, match="row 0"):
        escan_alignment(bad)


def test_escan_infeasible_settings_raise() -> None:
    with pytest.raises(DataError, match="no eSCAN example fits"):
        make_escan(5, torch.Generator().manual_seed(0), min_out=10, max_out=15, max_in=8)
    ds = make_escan(200, torch.Generator().manual_seed(0), min_out=10, max_out=15, max_in=12)
    assert int(ds.src_lengths.max()) <= 13 and ds.meta["rejected_overlength_input"] > 0


# ----------------------------------------------------------------------------------------------------------- SCAN
@pytest.mark.parametrize(("split", "n_train", "n_test"), [("simple", 16728, 4182), ("length", 16990, 3920),
                                                          ("addprim_jump", 14670, 7706),
                                                          ("addprim_turn_left", 21890, 1208)])
def test_scan_split_counts(split: str, n_train: int, n_test: int) -> None:
    train, test = seq2seq.load_scan(split)
    assert (len(train), len(test)) == (n_train, n_test)


def test_scan_splits_dataset() -> None:
    s = make_seq2seq_splits({"task": "scan", "scan_split": "length"}, seed=0)
    assert s.train.meta["scan_split"] == "length"
    n_val = round(0.1 * 16990)
    assert (len(s.train), len(s.val), len(s.test)) == (16990 - n_val, n_val, 3920)
    for _, ds in s:
        assert_conventions(ds)
        assert (ds.src_width, ds.tgt_width) == (10, 49)
    assert s.src_vocab.tokens == ["<pad>", "<eos>", *scan_grammar.COMMAND_WORDS]
    assert max(int(x) for x in s.train.tgt_lengths) <= 23 < min(int(x) for x in s.test.tgt_lengths)  # length split
    for r in range(0, len(s.val), 50):
        assert tuple(words_of(s.val, r, "tgt")) == interpret(" ".join(words_of(s.val, r)))
    assert not set(map(tuple, s.train.src.tolist())) & set(map(tuple, s.val.src.tolist()))  # carved, not copied
    small = [make_seq2seq_splits({"task": "scan", "max_pairs": 100}, seed=k) for k in (5, 5, 6)]
    assert torch.equal(small[0].val.src, small[1].val.src) and not torch.equal(small[0].val.src, small[2].val.src)


def test_read_scan_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.txt"
    p.write_text("IN: walk OUT: I_WALK\nwalk I_WALK\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: expected 'IN: <command> OUT: <actions>'"):
        read_scan_file(p)
    with pytest.raises(DataError, match="not found"):
        read_scan_file(tmp_path / "missing.txt.gz")


# ---------------------------------------------------------------------------------------------------- translation
@pytest.fixture(scope="module")
def tatoeba(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    return make_seq2seq_splits({"task": "translation", "corpus": "tatoeba"}, seed=0, tokenizer_dir=out), out


def test_tatoeba_word_level(tatoeba) -> None:
    s, out = tatoeba
    assert sum(len(ds) for _, ds in s) == 55000
    assert (len(s.train), len(s.val), len(s.test)) == (44012, 5509, 5479)
    for name, ds in s:
        assert_conventions(ds)
        m = ds.meta
        assert (m["dropped_empty"], m["dropped_overlength"], m["split"]) == (0, 0, name)
        assert m["src_vocab_sha1"] == s.src_vocab.fingerprint
    assert s.train.meta["src_unk_rate"] < s.test.meta["src_unk_rate"] < 0.05  # vocab fitted on train only
    assert s.src_vocab.tokens[:3] == ["<pad>", "<eos>", "<unk>"]
    assert s.tgt_vocab.tokens[:4] == ["<pad>", "<eos>", "<bos>", "<unk>"]
    # the loader splits by English sentence: no source sentence in two splits, every pair kept once
    pairs = load_translation_pairs("tatoeba", "fr", "all")
    parts = split_grouped(pairs, 0.1, 0.1, np.random.default_rng(0))
    en = {name: {a for a, _ in p} for name, p in parts.items()}
    assert not en["train"] & en["test"] and not en["train"] & en["val"] and not en["val"] & en["test"]
    assert sorted(p for part in parts.values() for p in part) == sorted(pairs)
    n_en = len({a for a, _ in pairs})
    assert (len(en["test"]), len(en["val"])) == (round(0.1 * n_en), round(0.1 * n_en))
    # vocabularies saved as JSON and reloaded give the same ids
    v = Seq2SeqVocab.load(out / "tgt_vocab.json")
    assert v.tokens == s.tgt_vocab.tokens and v.role == "tgt" and v.kind == "word"
    text = "Je n'en ai pas fini avec zyxw."
    assert v.encode(text) == s.tgt_vocab.encode(text) and v.unk_id in v.encode(text)
    assert (out / "tgt_vocab.tokenizer.json").is_file()
    assert json.loads((out / "src_vocab.json").read_text())["format"] == "innerworks.seq2seq_vocab"


def test_tatoeba_overlength_drop_and_truncate() -> None:
    cfg = {"task": "translation", "corpus": "tatoeba", "max_pairs": 3000, "max_length": 6}
    drop, trunc = make_seq2seq_splits(cfg, seed=1), make_seq2seq_splits({**cfg, "overlength": "truncate"}, seed=1)
    assert drop.src_vocab.tokens == trunc.src_vocab.tokens
    for name in ("train", "val", "test"):
        d, t = drop[name].meta, trunc[name].meta
        assert d["n_rows"] == t["n_rows"] == 3000
        assert d["dropped_overlength"] == t["truncated_overlength"] > 0
        assert len(drop[name]) == d["n_rows"] - d["dropped_overlength"] and len(trunc[name]) == t["n_rows"]
        assert int(drop[name].src_lengths.max()) <= 7 and int(trunc[name].tgt_lengths.max()) == 7
    # the count, recomputed independently from the raw texts
    pairs = load_translation_pairs("tatoeba", "fr", "all")[-4000:]  # the longest sentences
    sv, tv = drop.src_vocab, drop.tgt_vocab
    n_over = sum(len(sv.tokenize(a)) > 6 or len(tv.tokenize(b)) > 6 for a, b in pairs)
    ds = encode_pairs([a for a, _ in pairs], [b for _, b in pairs], sv, tv, max_length=6, overlength="drop")
    assert 0 < ds.meta["dropped_overlength"] == n_over < 4000 and len(ds) == 4000 - n_over


def test_multi30k_word_and_wordpiece(tmp_path: Path) -> None:
    assert [len(load_translation_pairs("multi30k", "de", p)) for p in ("train", "val", "test")] == [29000, 1014, 1000]
    s = make_seq2seq_splits({"task": "translation", "corpus": "multi30k", "target_lang": "de", "max_pairs": 5000},
                            seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (5000, 1014, 1000)
    assert s.train.meta["tgt_lang"] == "de" and len(s.tgt_vocab) > 1000
    raw = load_translation_pairs("multi30k", "de", "val")
    assert s.src_vocab.decode(s.val.src[0]) == " ".join(w if w in s.src_vocab.index else "<unk>"
                                                        for w in s.src_vocab.tokenize(raw[0][0]))
    cfg = {"task": "translation", "corpus": "multi30k", "target_lang": "fr", "tokenizer": "wordpiece",
           "vocab_size": 1000, "max_pairs": 1500, "max_length": 20}
    a = make_seq2seq_splits(cfg, seed=4)
    assert len(a.src_vocab) == len(a.tgt_vocab) == 1000 and a.tgt_vocab.kind == "wordpiece"
    # deterministic (HF's own trainer is not: huggingface/tokenizers#1794)
    fr = [p[1] for p in load_translation_pairs("multi30k", "fr", "val")]
    assert Seq2SeqVocab.fit_wordpiece(fr, "tgt", 600).tokens == Seq2SeqVocab.fit_wordpiece(fr, "tgt", 600).tokens
    a.tgt_vocab.save(tmp_path / "tgt.json")
    v = Seq2SeqVocab.load(tmp_path / "tgt.json")
    assert v.kind == "wordpiece" and v.encode_batch(fr[:50]) == a.tgt_vocab.encode_batch(fr[:50])
    ids = a.tgt_vocab.encode(fr[0])
    assert min(ids) >= 3 and a.tgt_vocab.decode(ids + [1, 0]) == a.tgt_vocab.tokenizer.decode(
        a.tgt_vocab.tokenizer.encode(fr[0]))
    for _, ds in a:
        assert_conventions(ds)
        assert int(ds.src_lengths.max()) <= 21 and ds.meta["n_rows"] == ds.meta["dropped_overlength"] + len(ds)
    assert any("##" in t for t in a.tgt_vocab.tokens)
    assert a.test.meta["tgt_unk_rate"] < 0.01  # word pieces cover unseen words


# ------------------------------------------------------------------------------------------------------ bad input
def test_encode_pairs_bad_rows() -> None:
    with pytest.raises(DataError, match="row 2: empty target text"):
        encode_pairs(["a", "b", "a"], ["X", "Y", "  "], SRC, TGT)
    ds = encode_pairs(["a", "", "b"], ["X", "Y", "Y"], SRC, TGT, drop_empty=True)
    assert len(ds) == 2 and ds.meta["dropped_empty"] == 1
    with pytest.raises(DataError, match="row 1: source is int"):
        encode_pairs(["a", 3], ["X", "Y"], SRC, TGT)
    with pytest.raises(DataError, match="2 rows but tgt_texts has 1"):
        encode_pairs(["a", "b"], ["X"], SRC, TGT)
    with pytest.raises(DataError, match=r"row 1: source: token 'c' is not in the closed vocabulary"):
        encode_pairs(["a", "a c"], ["X", "Y"], SRC, TGT)
    with pytest.raises(DataError, match="row 0: source: special token '<eos>'"):
        encode_pairs(["a <eos>"], ["X"], SRC, TGT)
    with pytest.raises(DataError, match="row 1: 3 source / 1 target tokens, over max_length 2"):
        encode_pairs(["a", "a b a"], ["X", "Y"], SRC, TGT, max_length=2)
    d = encode_pairs(["a", "a b a"], ["X", "Y"], SRC, TGT, max_length=2, overlength="drop")
    t = encode_pairs(["a", "a b a"], ["X", "Y"], SRC, TGT, max_length=2, overlength="truncate")
    assert (len(d), d.meta["dropped_overlength"], len(t), t.meta["truncated_overlength"]) == (1, 1, 2, 1)
    assert t.src[1].tolist() == [2, 3, 1]
    with pytest.raises(DataError, match="no pairs left out of 2"):
        encode_pairs(["", ""], ["X", "Y"], SRC, TGT, drop_empty=True)
    with pytest.raises(DataError, match="single string"):
        encode_pairs("a", "X", SRC, TGT)


def test_unknown_words_map_to_unk_and_mismatched_vocabularies_raise() -> None:
    sv = Seq2SeqVocab.fit_word(["the dog runs", "the cat runs"], "src")
    tv = Seq2SeqVocab.fit_word(["le chien court", "le chat court"], "tgt")
    ds = encode_pairs(["The bird runs!"], ["le oiseau court"], sv, tv, max_unk_rate=None)
    assert [ds.src_vocab[i] for i in ds.src[0]] == ["the", "<unk>", "runs", "<unk>", "<eos>"]
    assert ds.meta["src_unk_rate"] == 0.5 and math.isclose(ds.meta["tgt_unk_rate"], 1 / 3)
    with pytest.raises(DataError, match="src_vocab: got a tgt vocabulary"):
        encode_pairs(["x"], ["y"], tv, tv)
    with pytest.raises(DataError, match="tgt_vocab: got a src vocabulary"):
        encode_pairs(["x"], ["y"], sv, sv)
    with pytest.raises(DataError, match="has <bos> at id 2: it looks like a target vocabulary"):
        encode_pairs(["X"], ["X"], TGT, TGT)
    with pytest.raises(DataError, match=r"tgt_vocab: tgt vocabulary .*must start with \['<pad>', '<eos>', '<bos>'\]"):
        encode_pairs(["a"], ["a"], SRC, SRC)
    with pytest.raises(DataError, match="of tokens are <unk> .*another corpus or language"):
        encode_pairs(["le chien court"], ["the dog runs"], sv, Seq2SeqVocab.fit_word(["der hund"], "tgt"))
    with pytest.raises(DataError, match="target vocabulary mismatch at id 3"):
        check_vocab_match(ds, sv, ["<pad>", "<eos>", "<bos>", "zzz"])
    check_vocab_match(ds, sv, tv)
    # a plain token list with <unk> is a word vocabulary
    lst = encode_pairs(["a zz"], ["X"], ["<pad>", "<eos>", "<unk>", "a"], TGT)
    assert lst.src[0].tolist() == [3, 2, 1]
    # a vocabulary from another task: eSCAN's closed vocab cannot encode a SCAN command
    with pytest.raises(DataError, match="row 0: source: token 'look' is not in the closed vocabulary 'escan.src'"):
        encode_pairs(["look twice"], ["I_LOOK I_LOOK"], *seq2seq.escan_vocabs())


def test_vocab_load_rejects_other_json(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"tokens": ["<pad>"]}')
    with pytest.raises(DataError, match="not an innerworks seq2seq vocabulary"):
        Seq2SeqVocab.load(p)


@pytest.mark.parametrize(("cfg", "match"), [
    ({"task": "sort", "num_word": 3}, "field 'num_word': unknown field"),
    ({"task": "copy"}, "field 'task'"),
    ({"task": "one_to_one", "min_length": 9, "max_length": 4}, "min_length 9 > max_length 4"),
    ({"task": "one_to_one", "corpus": "multi30k"}, "field 'corpus' is not used by task 'one_to_one'"),
    ({"task": "scan", "max_length": 30}, "field 'max_length' is not used by task 'scan'"),
    ({"task": "translation", "target_lang": "de"}, "tatoeba' is English->French only"),
    ({"task": "translation", "corpus": "multi30k", "val_fraction": 0.2}, "val_fraction is not used"),
    ({"task": "escan", "escan_min_out": 10, "escan_max_out": 10}, "escan_max_out"),
    ({"task": "translation", "overlength": "clip"}, "field 'overlength'"),
    ({"task": "one_to_one", "n_train": 0}, "field 'n_train'"),
])
def test_config_errors(cfg: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_task_config(cfg)
    with pytest.raises(ConfigError):
        make_seq2seq_splits(cfg, seed=0)


def test_config_round_trip_and_defaults() -> None:
    for task in ("one_to_one", "escan", "scan", "translation"):
        cfg = Seq2SeqTaskConfig(task=task)
        assert parse_task_config(cfg.model_dump()) == cfg  # a dumped config (e.g. in a checkpoint) reloads
    assert Seq2SeqTaskConfig(task="sort").max_length == 20
    assert Seq2SeqTaskConfig(task="translation").max_length == 50
