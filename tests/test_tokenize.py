"""Tokenisers: word vocabulary with min-count, WordPiece trained with HF tokenizers, JSON save/load round trips."""

from __future__ import annotations

import json

import pytest

from innerworks.data.paths import data_root
from innerworks.data.tokenize import (
    NotFittedError,
    WordPieceTokenizer,
    WordTokenizer,
    load_tokenizer,
    make_tokenizer,
)
from innerworks.errors import DataError, InnerworksError

SST = data_root() / "sst"
needs_sst = pytest.mark.skipif(not SST.is_dir(), reason=f"shared data not found at {SST}")


@pytest.fixture(scope="module")
def sst_texts() -> dict[str, list[str]]:
    from innerworks.data.natural import load_sst

    c = load_sst(fine=True)
    return c.texts


def test_word_tokenizer_min_count_order_and_specials():
    texts = ["The cat sat.", "the dog sat", "A cat!"]
    tok = WordTokenizer(min_count=2).fit(texts)
    # counts: the 2, cat 2, sat 2, '.' 1, dog 1, a 1, '!' 1 -> ties broken alphabetically
    assert tok.vocab == ["<pad>", "<unk>", "cat", "sat", "the"]
    assert tok.counts_["dog"] == 1
    assert tok.encode("THE dog sat") == [4, 1, 3]
    assert tok.decode([4, 1, 3, 0, 0]) == "the <unk> sat"
    assert WordTokenizer(min_count=1, max_size=4).fit(texts).vocab == ["<pad>", "<unk>", "cat", "sat"]
    cased = WordTokenizer(min_count=1, lowercase=False).fit(["The the"])
    assert cased.encode("The the THE") == [cased.vocab.index("The"), cased.vocab.index("the"), 1]


def test_word_tokenizer_split_rule():
    assert WordTokenizer().tokenize("Don't stop -- it's 3.5 stars!") == [
        "don't", "stop", "-", "-", "it's", "3", ".", "5", "stars", "!"]
    # a literal special token in the text is ordinary text, never padding
    tok = WordTokenizer(min_count=1).fit(["<pad> <unk> pad"])
    assert 0 not in tok.encode("<pad> x <unk>")


def test_unfitted_and_bad_settings_raise_innerworks_errors():
    for tok in (WordTokenizer(), WordPieceTokenizer()):
        with pytest.raises(NotFittedError):
            tok.encode("x")
        with pytest.raises(InnerworksError):
            _ = tok.vocab
    with pytest.raises(DataError, match="0 texts"):
        WordTokenizer().fit([])
    with pytest.raises(DataError, match="expected a string"):
        WordTokenizer().fit(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InnerworksError, match="min_count"):
        WordTokenizer(min_count=0)
    with pytest.raises(InnerworksError, match="vocab_size"):
        WordPieceTokenizer(vocab_size=2)
    with pytest.raises(InnerworksError, match="tokenizer: expected one of word, wordpiece"):
        make_tokenizer("bpe")


@needs_sst
def test_word_tokenizer_save_load_round_trip(tmp_path, sst_texts):
    tok = WordTokenizer(min_count=2).fit(sst_texts["train"])
    path = tmp_path / "word.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, not pickle
    assert data["kind"] == "word" and data["vocab"][:2] == ["<pad>", "<unk>"]
    back = load_tokenizer(path)
    assert isinstance(back, WordTokenizer)
    assert back.vocab == tok.vocab and back.min_count == 2
    assert back.encode_batch(sst_texts["test"]) == tok.encode_batch(sst_texts["test"])
    # min-count 2 on the train split: a measured fact of SST-1 (~8.2k word types)
    assert 7000 < len(tok.vocab) < 9500


@needs_sst
def test_wordpiece_trains_deterministically_and_round_trips(tmp_path, sst_texts):
    from tokenizers import Tokenizer as HFTokenizer

    train = sst_texts["train"][:3000]
    a = WordPieceTokenizer(vocab_size=2000, min_frequency=2).fit(train)
    b = WordPieceTokenizer(vocab_size=2000, min_frequency=2).fit(train)
    # Plain HF training numbers "##x" pieces in hash order (huggingface/tokenizers#1794); ours must not.
    assert a.vocab == b.vocab
    assert a.vocab[:2] == ["<pad>", "<unk>"] and len(a.vocab) == 2000
    assert any(w.startswith("##") for w in a.vocab)
    ids = a.encode_batch(sst_texts["test"])
    assert all(0 not in seq for seq in ids)
    assert a.decode(a.encode("an unforgettably moving film")) == "an unforgettably moving film"

    path = tmp_path / "wp.json"
    a.save(path)
    back = load_tokenizer(path)
    assert isinstance(back, WordPieceTokenizer) and back.vocab == a.vocab
    assert back.encode_batch(sst_texts["test"]) == ids
    # the file is the plain tokenizers format
    hf = HFTokenizer.from_file(str(path))
    assert [e.ids for e in hf.encode_batch(sst_texts["test"][:50], add_special_tokens=False)] == ids[:50]
    assert WordPieceTokenizer.load(path).vocab == a.vocab
    with pytest.raises(DataError, match="holds a wordpiece tokenizer"):
        WordTokenizer.load(path)


def test_wordpiece_special_strings_in_text_are_not_special():
    tok = WordPieceTokenizer(vocab_size=50, min_frequency=1).fit(["pad unk the end"] * 3)
    ids = tok.encode("<pad> the <unk>")
    assert 0 not in ids
    assert tok.tokenize("<pad>")[1:2] == ["pad"]


def test_wordpiece_unknown_characters_become_unk():
    tok = WordPieceTokenizer(vocab_size=40, min_frequency=1).fit(["abc abd"])
    assert tok.encode("zzz") == [1]
    assert tok.encode("") == [] and tok.encode("   \n") == []


def test_load_tokenizer_errors_name_the_file(tmp_path):
    p = tmp_path / "t.json"
    with pytest.raises(DataError, match="t.json: tokenizer file not found"):
        load_tokenizer(p)
    p.write_text("{\n  nope")
    with pytest.raises(DataError, match=r"t.json:2: invalid JSON"):
        load_tokenizer(p)
    p.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        load_tokenizer(p)
    p.write_text(json.dumps({"kind": "bpe"}))
    with pytest.raises(DataError, match="not an innerworks tokenizer"):
        load_tokenizer(p)
    p.write_text(json.dumps({"kind": "word", "vocab": ["a", "<pad>"]}))
    with pytest.raises(DataError, match="field 'vocab': expected it to start with"):
        load_tokenizer(p)
    p.write_text(json.dumps({"kind": "word", "vocab": ["<pad>", "<unk>", "a", "a"]}))
    with pytest.raises(DataError, match="duplicate tokens"):
        load_tokenizer(p)
    p.write_text(json.dumps({"kind": "word", "vocab": ["<pad>", "<unk>"], "min_count": -1}))
    with pytest.raises(DataError, match="min_count"):
        load_tokenizer(p)
    p.write_text(json.dumps({"model": {"type": "WordPiece", "vocab": "broken"}}))
    with pytest.raises(DataError, match="not a valid tokenizers JSON file"):
        load_tokenizer(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="cannot read tokenizer file"):
        load_tokenizer(p)
