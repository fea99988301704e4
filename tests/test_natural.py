"""Natural-text loaders on the shared data, the generic CSV/TSV loader, tokenisation and the over-length policy."""

from __future__ import annotations

import sys

import pytest
import torch

from innerworks.data.natural import (
    CORPORA,
    NaturalConfig,
    RawCorpus,
    load_ag_news,
    load_corpus,
    load_csv,
    load_imdb,
    load_natural,
    load_raw,
    load_sst,
    load_yelp5,
    load_yelp_polarity,
    parse_natural_config,
    stratified_split,
    tokenize_corpus,
)
from innerworks.data.paths import data_root
from innerworks.data.tokenize import WordPieceTokenizer, WordTokenizer
from innerworks.errors import ConfigError, DataError, InnerworksError

ROOT = data_root()


def needs(folder: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (ROOT / folder).is_dir(), reason=f"shared data not found at {ROOT / folder}")


def keyset(texts: list[str]) -> set[str]:
    return {" ".join(t.lower().split()) for t in texts}


def assert_no_heldout_leak(c: RawCorpus) -> None:
    train = keyset(c.texts["train"])
    assert not keyset(c.texts["val"]) & train
    assert not keyset(c.texts["test"]) & (train | keyset(c.texts["val"]))


# ----------------------------------------------------------------------------------------------------------------------
# Shared corpora: counts and classes from the data READMEs
# ----------------------------------------------------------------------------------------------------------------------
@needs("ag_news")
def test_ag_news_counts_seeded_stratified_split_and_dedupe():
    raw = load_ag_news(seed=0, dedupe=False)
    assert raw.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert raw.source["rows"] == 7600
    # 1,900 per class, split 70/10/20 within each class
    assert raw.class_counts() == {"train": [1330] * 4, "val": [190] * 4, "test": [380] * 4}
    assert not any("#39;" in t or "\\" in t for s in raw.texts.values() for t in s)

    c = load_ag_news(seed=0)
    removed = c.source["dedupe_removed"]
    assert removed == raw.source["heldout_duplicates"] and sum(removed.values()) > 0
    assert sum(c.counts().values()) + sum(removed.values()) == 7600
    assert_no_heldout_leak(c)

    again, other = load_ag_news(seed=0), load_ag_news(seed=1)
    assert again.texts == c.texts and again.labels == c.labels
    assert other.texts["test"] != c.texts["test"]

    both = load_ag_news(text="title+description", dedupe=False)
    assert both.counts() == raw.counts() and all("\n" in t for t in both.texts["train"][:20])


def test_stratified_split_is_disjoint_covering_and_seeded():
    labels = [0] * 50 + [1] * 30 + [2] * 7
    a = stratified_split(labels, (0.7, 0.1, 0.2), seed=3)
    idx = a["train"] + a["val"] + a["test"]
    assert sorted(idx) == list(range(len(labels)))  # disjoint and covering
    assert [sum(labels[i] == 1 for i in a[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    assert stratified_split(labels, (0.7, 0.1, 0.2), seed=3) == a
    assert stratified_split(labels, (0.7, 0.1, 0.2), seed=4) != a


@needs("yelp_review_full")
def test_yelp_stars_and_relabeling():
    c = load_yelp5()
    assert c.counts() == {"train": 250, "val": 225, "test": 525}
    assert c.class_counts() == {"train": [52, 48, 51, 49, 50], "val": [52, 44, 49, 36, 44],
                                "test": [96, 108, 100, 115, 106]}
    assert c.class_names[0] == "1 star" and CORPORA["yelp5"].structure == "ordered"
    assert not any("\\n" in t or '\\"' in t for t in c.texts["train"])
    assert any("\n" in t for t in c.texts["train"])
    three = load_yelp5(num_classes=3)  # {1*:0, 3*:1, 5*:2}; 2* and 4* dropped
    assert three.class_counts()["train"] == [52, 51, 50]
    assert three.source["relabel_dropped"] == 48 + 49 + 44 + 36 + 108 + 115
    two = load_yelp5(num_classes=2)  # {1-2*:0, 4-5*:1}; 3* dropped
    assert two.class_counts()["test"] == [96 + 108, 115 + 106] and two.source["relabel_dropped"] == 51 + 49 + 100
    assert load_corpus("yelp3").class_names == ["1 star", "3 stars", "5 stars"]


@needs("yelp_polarity_sentences")
def test_yelp_polarity_pools_splits_and_removes_repeated_sentences():
    raw = load_yelp_polarity(dedupe=False)
    assert raw.source["rows"] == 40000
    assert raw.class_counts() == {"train": [14000, 14000], "val": [2000, 2000], "test": [4000, 4000]}
    dup = raw.source["heldout_duplicates"]
    assert dup["val"] > 0 and dup["test"] > 0  # short generic sentences repeat across files and splits
    c = load_yelp_polarity()
    assert c.source["dedupe_removed"] == dup
    assert sum(c.counts().values()) == 40000 - sum(dup.values())
    assert_no_heldout_leak(c)


@needs("imdb")
def test_imdb_layout_val_carved_from_train():
    c = load_imdb(seed=0)
    assert c.class_counts()["test"] == [500, 500]
    assert [a + b for a, b in zip(c.class_counts()["train"], c.class_counts()["val"], strict=True)] == [500, 500]
    assert c.counts()["val"] == 124  # train:val = 0.7:0.1 -> 1/8 of each class's 500, rounded down (62.5)
    assert not any("<br />" in t for s in c.texts.values() for t in s)
    other = load_imdb(seed=1)
    assert other.texts["test"] == c.texts["test"] and other.texts["val"] != c.texts["val"]
    assert not keyset(c.texts["val"]) & keyset(c.texts["train"])


@needs("sst")
def test_sst_fine_and_binary_counts():
    fine = load_sst(fine=True)
    assert sum(fine.counts().values()) == 11855 and fine.num_classes == 5
    assert fine.class_counts() == {"train": [1092, 2218, 1624, 2322, 1288], "val": [139, 289, 229, 279, 165],
                                   "test": [279, 633, 389, 510, 399]}
    binary = load_sst(fine=False)
    assert sum(binary.counts().values()) == 9613 and binary.class_names == ["negative", "positive"]
    assert binary.class_counts() == {"train": [3310, 3610], "val": [428, 444], "test": [912, 909]}
    # official splits kept; the few repeats are recorded, not removed
    assert fine.source["heldout_duplicates"] == {"val": 2, "test": 2}


def test_missing_corpus_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="corpus folder not found"):
        load_sst(tmp_path / "nowhere")
    (tmp_path / "stsa.fine.train").write_text("1 fine\n")
    with pytest.raises(DataError, match=r"stsa.fine.dev: file not found"):
        load_sst(tmp_path)
    with pytest.raises(ConfigError, match="corpus: expected one of"):
        load_corpus("mnist")


def test_sst_format_errors_name_file_and_line(tmp_path):
    for part in ("train", "dev", "test"):
        (tmp_path / f"stsa.binary.{part}").write_text("0 bad film\n1 good film\n")
    (tmp_path / "stsa.binary.dev").write_text("0 ok\n\n1 fine\n")
    with pytest.raises(DataError, match=r"stsa.binary.dev:2: expected '<label> <sentence>'"):
        load_sst(tmp_path, fine=False)
    (tmp_path / "stsa.binary.dev").write_text("0 ok\n3 too positive\n")
    with pytest.raises(DataError, match=r"stsa.binary.dev:2: label '3' outside the class set \{0, 1\}"):
        load_sst(tmp_path, fine=False)
    (tmp_path / "stsa.binary.dev").write_text("0 ok\n1\n")
    with pytest.raises(DataError, match=r"stsa.binary.dev:2: empty text"):
        load_sst(tmp_path, fine=False)
    c = load_sst(tmp_path, fine=False, empty_text="drop")
    assert c.source["empty_dropped"] == 1 and c.counts()["val"] == 1


# ----------------------------------------------------------------------------------------------------------------------
# Generic CSV / TSV
# ----------------------------------------------------------------------------------------------------------------------
def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def reviews(n: int = 60) -> str:
    return "stars,review,id\n" + "".join(f"{1 + i % 5},review number {i},{i}\n" for i in range(n))


def test_csv_label_map_drops_and_names(tmp_path):
    p = write(tmp_path / "r.csv", reviews())
    c = load_csv(p, "review", "stars", label_map={1: 0, 2: 0, 3: None, 4: 1, 5: 1}, seed=0)
    assert c.class_names == ["1/2", "4/5"] and c.source["label_map_dropped"] == 12
    assert sum(c.counts().values()) == 48 and c.class_counts()["train"] == [17, 17]
    named = load_csv(p, "review", "stars", label_map={"1": 0, "5": 1, "2": None, "3": None, "4": None},
                     class_names=["awful", "great"])
    assert named.class_names == ["awful", "great"] and sum(named.counts().values()) == 24
    with pytest.raises(DataError, match=r"r.csv:5: label '4' not in label_map \(expected one of 1, 2, 3\)"):
        load_csv(p, "review", "stars", label_map={1: 0, 2: 1, 3: 2})
    with pytest.raises(ConfigError, match="without gaps; missing \\[1\\]"):
        load_csv(p, "review", "stars", label_map={1: 0, 2: 2})
    with pytest.raises(ConfigError, match="class_names: label_map has 2 classes"):
        load_csv(p, "review", "stars", label_map={1: 0, 2: 1}, class_names=["a"])


def test_csv_labels_without_map(tmp_path):
    rows = "".join(f"doc {i},{[1, 2, 10][i % 3]}\n" for i in range(30))
    p = write(tmp_path / "n.csv", "text,label\n" + rows)
    assert load_csv(p, "text", "label").class_names == ["1", "2", "10"]  # numeric order
    q = write(tmp_path / "c.csv", "text,label\n" + "".join(f"doc {i},{['neg', 'pos', 1][i % 3]}\n" for i in range(30)))
    c = load_csv(q, "text", "label", class_names=["neg", "pos"])  # names or indices
    assert c.class_counts()["train"] == [7, 14]
    bad = write(tmp_path / "b.csv", "text,label\n" + "x,neg\ny,2\n")
    with pytest.raises(DataError, match=r"b.csv:3: label '2' outside the class set"):
        load_csv(bad, "text", "label", class_names=["neg", "pos"])


def test_csv_tsv_columns_headers_and_files(tmp_path):
    tsv = write(tmp_path / "d.tsv", "".join(f"{i % 2}\ttitle {i}\tbody, with comma {i}\n" for i in range(40)))
    c = load_csv(tsv, [1, 2], 0, has_header=False)
    assert c.class_names == ["0", "1"] and c.texts["train"][0].startswith("title ")
    assert "\nbody, with comma" in c.texts["train"][0]
    with pytest.raises(ConfigError, match="has_header is False"):
        load_csv(tsv, "text", 0, has_header=False)
    with pytest.raises(ConfigError, match="cannot tell the delimiter"):
        load_csv(write(tmp_path / "d.txt", "a|b\n"), 0, 1)
    piped = load_csv(write(tmp_path / "p.txt", "t|y\n" + "".join(f"w{i}|{i % 2}\n" for i in range(30))), "t", "y",
                     delimiter="|")
    assert sum(piped.counts().values()) == 30
    with pytest.raises(DataError, match=r"d.csv:1: no column 'label' for label_column \(header has: text, y\)"):
        load_csv(write(tmp_path / "d.csv", "text,y\na,1\n"), "text", "label")

    train = write(tmp_path / "train.csv", "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(40)))
    test = write(tmp_path / "test.csv", "text,label\n" + "".join(f"s{i} zebra,{i % 2}\n" for i in range(10)))
    tt = load_csv(train, "text", "label", test_path=test)
    assert tt.counts() == {"train": 36, "val": 4, "test": 10}  # val = 1/8 of 20 per class = 2.5, ties to train
    with pytest.raises(ConfigError, match="val_path given without test_path"):
        load_csv(train, "text", "label", val_path=test)


def test_csv_malformed_input_names_file_and_line(tmp_path):
    with pytest.raises(DataError, match="m.csv: file not found"):
        load_csv(tmp_path / "m.csv", "text", "label")
    with pytest.raises(DataError, match="expected a file"):
        load_csv(tmp_path, "text", "label", delimiter=",")
    with pytest.raises(DataError, match="e.csv: empty file"):
        load_csv(write(tmp_path / "e.csv", ""), "text", "label")
    with pytest.raises(DataError, match="h.csv: no data rows"):
        load_csv(write(tmp_path / "h.csv", "text,label\n\n"), "text", "label")
    # the quoted field spans lines 2-3, so the short row is on line 4
    short = write(tmp_path / "s.csv", 'text,label\n"two\nlines",1\nonly one field\n')
    with pytest.raises(DataError, match=r"s.csv:4: expected 2 columns \(as in the header\), got 1"):
        load_csv(short, "text", "label")
    with pytest.raises(DataError, match=r"q.csv:3: malformed CSV row"):
        load_csv(write(tmp_path / "q.csv", 'text,label\nok,1\n"bad"quote,1\n'), "text", "label")
    (tmp_path / "u.csv").write_bytes(b"text,label\nok,1\nbad \xff byte,1\n")
    with pytest.raises(DataError, match=r"u.csv:3: not valid UTF-8"):
        load_csv(tmp_path / "u.csv", "text", "label")
    with pytest.raises(DataError, match=r"x.csv:3: empty text"):
        load_csv(write(tmp_path / "x.csv", "text,label\nok,1\n  ,0\n"), "text", "label")
    few = write(tmp_path / "f.csv", "text,label\na,1\nb,0\n")
    with pytest.raises(DataError, match="no documents for split"):
        load_csv(few, "text", "label")
    with pytest.raises(ConfigError, match="fractions must sum to 1"):
        load_csv(few, "text", "label", fractions=(0.5, 0.5, 0.5))


def test_csv_empty_text_drop_is_counted(tmp_path):
    body = "".join(f"doc {i},{i % 2}\n" if i % 10 else f" ,{i % 2}\n" for i in range(50))
    c = load_csv(write(tmp_path / "e.csv", "text,label\n" + body), "text", "label", empty_text="drop")
    assert c.source["empty_dropped"] == 5 and sum(c.counts().values()) == 45


# ----------------------------------------------------------------------------------------------------------------------
# Tokenisation and the over-length policy
# ----------------------------------------------------------------------------------------------------------------------
def toy_corpus() -> RawCorpus:
    return RawCorpus("toy", {"train": ["a b c d e", "a b", "a", "b c d"], "val": ["a b c", "   "],
                             "test": ["e d c b a a", "b"]},
                     {"train": [0, 1, 0, 1], "val": [1, 0], "test": [0, 1]}, ["x", "y"])


def test_overlength_drop_versus_truncate_counts():
    c = toy_corpus()
    tok = WordTokenizer(min_count=1).fit(c.texts["train"])
    drop = tokenize_corpus(c, tok, max_length=3, overlength="drop")
    assert [len(d) for _, d in drop] == [3, 1, 1]
    assert [d.meta["overlength"] for _, d in drop] == [1, 0, 1]
    assert drop.val.meta["empty_dropped"] == 1 and drop.train.meta["overlength_policy"] == "drop"
    assert drop.train.labels.tolist() == [1, 0, 1] and drop.train.max_length == 3

    trunc = tokenize_corpus(c, tok, max_length=3, overlength="truncate")
    assert [len(d) for _, d in trunc] == [4, 1, 2]
    assert [d.meta["overlength"] for _, d in trunc] == [1, 0, 1]
    assert trunc.train.decode(0) == ["a", "b", "c"] and int(trunc.train.lengths.max()) == 3
    assert trunc.test.tokens[1, 1:].eq(0).all()  # padded with 0
    assert trunc.train.vocab is trunc.test.vocab or trunc.train.vocab == trunc.test.vocab

    msg = r"toy: split 'val' is empty after tokenisation \(2 documents: 1 longer than max_length=1 \(drop\), 1 with"
    with pytest.raises(DataError, match=msg):
        tokenize_corpus(RawCorpus("toy", c.texts | {"test": ["a b"]}, c.labels | {"test": [0]}, ["x", "y"]),
                        tok, max_length=1)
    with pytest.raises(ConfigError, match="overlength: expected 'drop' or 'truncate'"):
        tokenize_corpus(c, tok, 3, overlength="clip")  # type: ignore[arg-type]
    with pytest.raises(InnerworksError, match="not fitted"):
        tokenize_corpus(c, WordTokenizer(), 3)


@needs("sst")
def test_overlength_counts_on_sst_match_an_independent_count():
    c = load_sst(fine=True)
    tok = WordTokenizer(min_count=2).fit(c.texts["train"])
    n_long = {s: sum(len(tok.encode(t)) > 20 for t in c.texts[s]) for s in ("train", "val", "test")}
    assert n_long["train"] > 1000  # SST sentences often exceed 20 words
    drop = tokenize_corpus(c, tok, max_length=20, overlength="drop")
    trunc = tokenize_corpus(c, tok, max_length=20, overlength="truncate")
    for s, d in drop:
        assert d.meta["overlength"] == n_long[s] and len(d) == c.counts()[s] - n_long[s]
    for s, d in trunc:
        assert d.meta["overlength"] == n_long[s] and len(d) == c.counts()[s] and d.max_length == 20


@needs("sst")
def test_load_natural_fits_on_train_only_and_reloads_exactly(tmp_path):
    cfg = {"corpus": "sst5", "tokenizer": "wordpiece", "vocab_size": 2000, "max_length": 40, "max_docs": 2500}
    path = tmp_path / "tok.json"
    splits, tok = load_natural(cfg, seed=0, tokenizer_path=path)
    assert path.exists()
    raw = load_raw(cfg, seed=0).subsample(2500, seed=0)
    train_only = WordPieceTokenizer(vocab_size=2000, min_frequency=2).fit(raw.texts["train"])
    assert tok.vocab == train_only.vocab
    assert splits.train.meta["overlength_policy"] == "drop" and splits.train.meta["max_length"] == 40
    assert splits.test.num_classes == 5 and splits.train.vocab_size == 2000
    assert sum(len(d) + d.meta["overlength"] for _, d in splits) == sum(raw.counts().values())

    again, tok2 = load_natural(cfg, seed=0, tokenizer_path=path)  # reuses the saved file
    assert tok2.vocab == tok.vocab
    for (_, a), (_, b) in zip(splits, again, strict=True):
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.labels, b.labels)
    with pytest.raises(ConfigError, match="holds a wordpiece tokenizer but the config asks for 'word'"):
        load_natural({**cfg, "tokenizer": "word"}, seed=0, tokenizer_path=path)


def test_word_vocab_never_sees_test_only_words(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\n" + "".join(f"plain words {i},{i % 2}\n" for i in range(40)))
    test = write(tmp_path / "test.csv", "text,label\n" + "".join(f"zebra {i},{i % 2}\n" for i in range(10)))
    splits, tok = load_natural({"corpus": "csv", "path": str(train), "test_path": str(test), "text_column": "text",
                                "label_column": "label", "min_count": 1}, seed=0)
    assert "zebra" not in tok.vocab and "plain" in tok.vocab
    assert (splits.test.tokens[:, 0] == 1).all()  # <unk>


@needs("ag_news")
def test_load_natural_max_docs_subsamples_with_counts():
    splits, _ = load_natural({"corpus": "ag_news", "max_docs": 400, "max_length": 1000}, seed=0)
    sizes = [len(d) for _, d in splits]
    assert sizes == [280, 40, 80]
    src = splits.train.meta["source"]
    assert src["max_docs"] == 400 and sum(src["before_max_docs"].values()) == 7596
    assert splits.train.labels.bincount().tolist() == [70, 70, 70, 70]


def test_natural_config_validation():
    assert NaturalConfig(corpus="ag_news").resolved_max_length() == 100
    assert NaturalConfig(corpus="yelp5").resolved_max_length() == 1000
    cfg = parse_natural_config({"corpus": "csv", "path": "x.csv", "text_column": "t", "label_column": "y",
                                "label_map": {1: 0, 2: None}})
    assert cfg.label_map == {"1": 0, "2": None} and cfg.resolved_max_length() is None
    for bad, msg in [
        ({"corpus": "sst2", "tokeniser": "word"}, "data: field 'tokeniser': unknown field"),
        ({"corpus": "mnist"}, "data: field 'corpus': expected one of"),
        ({"corpus": "csv", "path": "x.csv"}, "corpus 'csv' needs text_column, label_column"),
        ({"corpus": "sst2", "path": "x.csv"}, "path only apply to corpus 'csv'"),
        ({"corpus": "sst2", "split": [0.5, 0.5, 0.5]}, "data: field 'split': fractions must sum to 1"),
        ({"corpus": "sst2", "overlength": "clip"}, "data: field 'overlength'"),
        ({"corpus": "sst2", "max_length": 0}, "data: field 'max_length'"),
        ({"corpus": "sst2", "text_field": "title+description"}, "text_field only applies"),
        ("sst2", "data: expected a mapping"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            parse_natural_config(bad)


def test_hub_loader_fails_cleanly_without_datasets(monkeypatch):
    from innerworks.data.hub import load_from_hub

    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError; no network
    with pytest.raises(InnerworksError, match="'datasets' package is not installed"):
        load_from_hub("ag_news")
    with pytest.raises(InnerworksError, match="no hub source for 'yelp_polarity'"):
        load_from_hub("yelp_polarity")
