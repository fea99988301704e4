"""Property-based tests: malformed input to the loaders and tokenisers either loads or raises InnerworksError.

Nothing else may escape (no csv.Error, UnicodeDecodeError, IndexError, KeyError...): the CLI turns InnerworksError
into a one-line message and exit code 2, and anything else into a traceback. Two kinds of input:

- random bytes / random rows: load or InnerworksError, nothing else;
- a valid file with at most one corrupted line: the valid file MUST load, and the corrupted one MUST fail with a
  one-line message naming the file and the corrupted line.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from innerworks.data.natural import (
    RawCorpus,
    load_ag_news,
    load_csv,
    load_imdb,
    load_sst,
    load_yelp5,
    load_yelp_polarity,
    tokenize_corpus,
)
from innerworks.data.tokenize import WordPieceTokenizer, WordTokenizer, load_tokenizer
from innerworks.errors import InnerworksError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text with the characters that break naive CSV/line parsing.
nasty_text = st.text(alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(list(',"\t\r\n\\ ;|'))),
                     max_size=30)
# Same without line breaks, for one-document-per-line formats.
line_text = nasty_text.map(lambda s: s.replace("\r", " ").replace("\n", " "))
# For CSV fields: newlines allowed (the writer quotes them) but no bare "\r", which csv.writer with "\n" line ends
# leaves unquoted, so the file would really be malformed (a CR ends an unquoted record).
csv_text = nasty_text.map(lambda s: s.replace("\r", "\n"))
labels = st.one_of(st.sampled_from(["0", "1", "2", "3", "4", "5", "-1", "x", "", " 1 ", "1.0", "99999999999"]),
                   nasty_text)


def outcome(fn: Callable[[], RawCorpus]) -> RawCorpus | InnerworksError:
    """Run a loader: the corpus (invariants checked) or the InnerworksError it raised. Anything else fails."""
    try:
        corpus = fn()
    except InnerworksError as exc:
        msg = str(exc)
        assert msg.strip() and "\n" not in msg, f"not a one-line message: {msg!r}"
        event(type(exc).__name__)
        return exc
    event("loaded")
    assert isinstance(corpus, RawCorpus)
    for s in ("train", "val", "test"):
        assert len(corpus.texts[s]) == len(corpus.labels[s]) > 0
        assert all(isinstance(t, str) and t.strip() for t in corpus.texts[s])
        assert all(0 <= y < corpus.num_classes for y in corpus.labels[s])
    return corpus


def as_csv(rows: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------------------
# Random input: load or InnerworksError
# ----------------------------------------------------------------------------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=300), header=st.booleans(), suffix=st.sampled_from([".csv", ".tsv"]))
def test_load_csv_random_bytes(data: bytes, header: bool, suffix: str):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"f{suffix}"
        p.write_bytes((b"text,label\n" if header else b"") + data)
        outcome(lambda: load_csv(p, "text" if header else 0, "label" if header else 1, has_header=header))


@FUZZ
@given(rows=st.lists(st.lists(nasty_text, min_size=0, max_size=4), max_size=25),
       raw_join=st.booleans(),
       label_map=st.one_of(st.none(), st.dictionaries(st.sampled_from(["0", "1", "2", "x"]),
                                                      st.one_of(st.none(), st.integers(-1, 3)), max_size=4)),
       class_names=st.one_of(st.none(), st.lists(st.sampled_from(["0", "1", "pos", "neg", ""]), max_size=3)),
       text_col=st.sampled_from(["text", 0, 1, 7, ["text", "label"], []]),
       empty=st.sampled_from(["error", "drop"]))
def test_load_csv_random_rows_and_settings(rows, raw_join, label_map, class_names, text_col, empty):
    # raw_join writes fields without quoting, so quotes, delimiters and newlines inside fields break the rows
    body = "".join(",".join(r) + "\n" for r in rows) if raw_join else as_csv(rows)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "data.csv"
        p.write_text("text,label\n" + body, encoding="utf-8")
        outcome(lambda: load_csv(p, text_col, "label", label_map=label_map, class_names=class_names,
                                 empty_text=empty, seed=0))


@FUZZ
@given(lines=st.lists(st.tuples(labels, nasty_text).map(lambda t: f"{t[0]} {t[1]}"), max_size=30),
       junk=st.one_of(st.none(), st.binary(max_size=50)), fine=st.booleans())
def test_load_sst_random_lines(lines, junk, fine):
    names = [f"stsa.{'fine' if fine else 'binary'}.{p}" for p in ("train", "dev", "test")]
    with tempfile.TemporaryDirectory() as d:
        for i, name in enumerate(names):
            (Path(d) / name).write_text("\n".join(lines[i::3]), encoding="utf-8")
        if junk is not None:
            (Path(d) / names[0]).write_bytes(junk)
        outcome(lambda: load_sst(d, fine=fine))


@FUZZ
@given(rows=st.lists(st.lists(nasty_text, min_size=0, max_size=4), max_size=25),
       header=st.sampled_from(["Class Index,Title,Description", "a,b,c", ""]), raw_join=st.booleans())
def test_load_ag_news_random_rows(rows, header, raw_join):
    body = "".join(",".join(r) + "\n" for r in rows) if raw_join else as_csv(rows)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "test.csv").write_text(header + "\n" + body, encoding="utf-8")
        outcome(lambda: load_ag_news(d, text="title+description"))


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from(["train", "test"]), st.sampled_from(["neg", "pos"]),
                                st.sampled_from(["1_3.txt", "2_9.txt", "3_1.txt", "4_7.txt", "x.txt", "5_5.txt",
                                                 ".hidden", "6_10.txt", "7_2.txt", "8_8.txt"]),
                                st.binary(max_size=40)), max_size=14))
def test_load_imdb_random_tree(files):
    with tempfile.TemporaryDirectory() as d:
        for split, lab, name, data in files:
            (Path(d) / split / lab).mkdir(parents=True, exist_ok=True)
            (Path(d) / split / lab / name).write_bytes(data)
        outcome(lambda: load_imdb(d))


# ----------------------------------------------------------------------------------------------------------------------
# A valid file plus at most one corrupted line: valid loads, corrupted fails naming file:line
# ----------------------------------------------------------------------------------------------------------------------
def docs(n_min: int, n_max: int, text: st.SearchStrategy[str] = nasty_text) -> st.SearchStrategy[list[str]]:
    """Distinct non-empty documents (a unique prefix keeps dedupe and empty-text rules out of the way)."""
    return st.lists(text, min_size=n_min, max_size=n_max).map(lambda ts: [f"d{i} {t}" for i, t in enumerate(ts)])


CSV_CORRUPTIONS = {
    "extra column": b"some text,1,surplus\n",
    "missing column": b"no delimiter here\n",
    "label outside class set": b"some text,7\n",
    "non-integer label": b"some text,one\n",
    "malformed quoting": b'"quoted"tail,1\n',
    "empty text": b"   ,1\n",
    "invalid utf-8": b"caf\xe9 latin-1,1\n",
}


@FUZZ
@given(texts=docs(12, 40, csv_text), corruption=st.one_of(st.none(), st.sampled_from(sorted(CSV_CORRUPTIONS))),
       where=st.floats(0, 1), use_map=st.booleans())
def test_load_csv_valid_file_loads_and_one_bad_row_is_named(texts, corruption, where, use_map):
    rows = [as_csv([[t, str(i % 2)]]).encode() for i, t in enumerate(texts)]
    k = int(where * len(rows))
    if corruption is not None:
        rows.insert(k, CSV_CORRUPTIONS[corruption])
    head = b"text,label\n"
    lmap = {"0": 0, "1": 1} if use_map else None
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "data.csv"
        p.write_bytes(head + b"".join(rows))
        got = outcome(lambda: load_csv(p, "text", "label", label_map=lmap, class_names=None if use_map else
                                       ["0", "1"], seed=0))
    if corruption is None:
        assert isinstance(got, RawCorpus), f"valid file refused: {got}"
        assert sum(got.counts().values()) == len(texts) and got.class_names == ["0", "1"]
    else:
        assert isinstance(got, InnerworksError), f"{corruption} accepted"
        line = (head + b"".join(rows[:k])).count(b"\n") + 1
        assert f"data.csv:{line}:" in str(got), (corruption, str(got))


@FUZZ
@given(texts=docs(12, 40, line_text), fine=st.booleans(),
       corruption=st.one_of(st.none(), st.sampled_from(["9 label out of range", "x non-integer", "3",
                                                        "", "\xff"])),
       which=st.integers(0, 2), where=st.floats(0, 1))
def test_load_sst_valid_files_load_and_one_bad_line_is_named(texts, fine, corruption, which, where):
    n = 5 if fine else 2
    names = [f"stsa.{'fine' if fine else 'binary'}.{p}" for p in ("train", "dev", "test")]
    parts = [[f"{i % n} {t}" for i, t in enumerate(texts[j::3])] for j in range(3)]
    k = int(where * len(parts[which]))
    with tempfile.TemporaryDirectory() as d:
        for j, name in enumerate(names):
            lines = [ln.encode() for ln in parts[j]]
            if corruption is not None and j == which:
                # "3" alone is a label with no sentence; "\xff" is written as a raw invalid byte
                lines.insert(k, b"\xff bad" if corruption == "\xff" else corruption.encode())
            (Path(d) / name).write_bytes(b"\n".join(lines) + b"\n")
        got = outcome(lambda: load_sst(d, fine=fine))
    if corruption is None:
        assert isinstance(got, RawCorpus), f"valid files refused: {got}"
        assert sum(got.counts().values()) == len(texts)
    else:
        assert isinstance(got, InnerworksError)
        assert f"{names[which]}:{k + 1}:" in str(got), str(got)


@FUZZ
@given(texts=docs(12, 40, line_text), blank=st.booleans(), junk_at=st.one_of(st.none(), st.integers(0, 3)))
def test_load_yelp_polarity_valid_files_load_and_bad_bytes_are_named(texts, blank, junk_at):
    names = [f"sentiment.{p}.{y}" for p in ("dev", "test") for y in (0, 1)]
    with tempfile.TemporaryDirectory() as d:
        for j, name in enumerate(names):
            lines = [t.encode() for t in texts[j::4]] + ([b"  "] if blank and junk_at is None else [])
            if junk_at == j:
                lines.append(b"\x80 stray byte")
            (Path(d) / name).write_bytes(b"\n".join(lines) + b"\n")
        got = outcome(lambda: load_yelp_polarity(d))
        dropped = outcome(lambda: load_yelp_polarity(d, empty_text="drop"))
    if junk_at is not None:
        line = len(texts[junk_at::4]) + 1
        assert isinstance(got, InnerworksError) and f"{names[junk_at]}:{line}: not valid UTF-8" in str(got)
    elif blank:
        assert isinstance(got, InnerworksError) and "empty text" in str(got)
        assert isinstance(dropped, RawCorpus) and dropped.source["empty_dropped"] == 4
    else:
        assert isinstance(got, RawCorpus) and sum(got.counts().values()) == len(texts)


@FUZZ
@given(texts=docs(24, 40, csv_text), which=st.one_of(st.none(), st.sampled_from(["label 5", "label 0", "2 columns"])),
       where=st.floats(0, 1))
def test_load_ag_news_valid_file_loads_and_bad_row_is_named(texts, which, where):
    rows = [["Class Index", "Title", "Description"]] + [[str(1 + i % 4), f"t{i}", t] for i, t in enumerate(texts)]
    k = 1 + int(where * (len(rows) - 1))
    if which is not None:
        rows.insert(k, {"label 5": ["5", "t", "x"], "label 0": ["0", "t", "x"], "2 columns": ["1", "x"]}[which])
    with tempfile.TemporaryDirectory() as d:
        text = as_csv(rows)
        (Path(d) / "test.csv").write_text(text, encoding="utf-8")
        got = outcome(lambda: load_ag_news(d))
        if which is None:
            assert isinstance(got, RawCorpus) and got.num_classes == 4
            assert sum(got.counts().values()) + sum(got.source["dedupe_removed"].values()) == len(texts)
        else:
            line = as_csv(rows[:k]).count("\n") + 1
            assert isinstance(got, InnerworksError) and f"test.csv:{line}:" in str(got), str(got)


@FUZZ
@given(texts=docs(15, 30, csv_text), num_classes=st.sampled_from([5, 3, 2]),
       bad=st.one_of(st.none(), st.tuples(st.integers(0, 2), st.sampled_from(["5", "-1", "", "four"]))))
def test_load_yelp5_valid_files_load_and_bad_label_is_named(texts, num_classes, bad):
    files = ("train.csv", "val.csv", "test.csv")
    with tempfile.TemporaryDirectory() as d:
        for j, name in enumerate(files):
            rows = [["label", "text", "id"]] + [[str(i % 5), t, str(i)] for i, t in enumerate(texts[j::3])]
            if bad is not None and bad[0] == j:
                rows.append([bad[1], "a review", "0"])
            (Path(d) / name).write_text(as_csv(rows), encoding="utf-8")
        got = outcome(lambda: load_yelp5(d, num_classes=num_classes))
    if bad is None:
        assert isinstance(got, RawCorpus) and got.num_classes == num_classes
    else:
        assert isinstance(got, InnerworksError) and f"{files[bad[0]]}:" in str(got), str(got)
        assert "outside the class set" in str(got)


@pytest.mark.parametrize("problem", ["bad name", "rating mismatch", "invalid utf-8", "empty review", "no pos folder"])
def test_load_imdb_named_errors(tmp_path, problem):
    for split in ("train", "test"):
        for lab, rating in (("neg", 2), ("pos", 9)):
            (tmp_path / split / lab).mkdir(parents=True)
            for i in range(8):
                (tmp_path / split / lab / f"{i}_{rating}.txt").write_text(f"review {split} {lab} {i}<br />end")
    valid = load_imdb(tmp_path)
    assert valid.counts() == {"train": 14, "val": 2, "test": 16} and "<br />" not in valid.texts["train"][0]
    bad = tmp_path / "train" / "pos"
    if problem == "bad name":
        (bad / "review.txt").write_text("x")
    elif problem == "rating mismatch":
        (bad / "99_3.txt").write_text("x")
    elif problem == "invalid utf-8":
        (bad / "99_8.txt").write_bytes(b"ok\n\xff")
    elif problem == "empty review":
        (bad / "99_8.txt").write_text(" \n")
    else:
        for f in (tmp_path / "test" / "pos").iterdir():
            f.unlink()
        (tmp_path / "test" / "pos").rmdir()
    with pytest.raises(InnerworksError) as info:
        load_imdb(tmp_path)
    msg = str(info.value)
    expected = {"bad name": "review.txt: expected a file named <id>_<rating>.txt",
                "rating mismatch": "99_3.txt: rating 3 does not fit folder 'pos'",
                "invalid utf-8": "99_8.txt:2: not valid UTF-8", "empty review": "99_8.txt:1: empty text",
                "no pos folder": "pos: folder not found"}[problem]
    assert expected in msg and "\n" not in msg


# ----------------------------------------------------------------------------------------------------------------------
# Tokenisers and tokenize_corpus
# ----------------------------------------------------------------------------------------------------------------------
@FUZZ
@given(texts=st.lists(nasty_text, min_size=1, max_size=20), probe=nasty_text, min_count=st.integers(1, 3))
def test_word_tokenizer_round_trip_property(texts, probe, min_count):
    tok = WordTokenizer(min_count=min_count).fit(texts)
    ids = tok.encode(probe)
    assert 0 not in ids and all(0 < i < len(tok.vocab) for i in ids)
    assert len(ids) == len(tok.tokenize(probe))
    with tempfile.TemporaryDirectory() as d:
        tok.save(Path(d) / "t.json")
        back = load_tokenizer(Path(d) / "t.json")
    assert back.vocab == tok.vocab and back.encode(probe) == ids


@settings(max_examples=20, deadline=None)
@given(texts=st.lists(nasty_text, min_size=1, max_size=12), probe=nasty_text)
def test_wordpiece_round_trip_property(texts, probe):
    tok = WordPieceTokenizer(vocab_size=60, min_frequency=1).fit(texts)
    ids = tok.encode(probe)
    assert 0 not in ids and all(0 < i < len(tok.vocab) for i in ids)
    assert WordPieceTokenizer(vocab_size=60, min_frequency=1).fit(texts).vocab == tok.vocab  # deterministic
    with tempfile.TemporaryDirectory() as d:
        tok.save(Path(d) / "w.json")
        back = load_tokenizer(Path(d) / "w.json")
    assert back.vocab == tok.vocab and back.encode(probe) == ids


@FUZZ
@given(data=st.binary(max_size=200))
def test_load_tokenizer_random_bytes(data):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.json"
        p.write_bytes(data)
        try:
            load_tokenizer(p)
        except InnerworksError as exc:
            assert "t.json" in str(exc)


@FUZZ
@given(splits=st.fixed_dictionaries({s: st.lists(st.tuples(nasty_text, st.integers(0, 1)), min_size=1, max_size=8)
                                     for s in ("train", "val", "test")}),
       max_length=st.one_of(st.none(), st.integers(1, 6)), policy=st.sampled_from(["drop", "truncate"]))
def test_tokenize_corpus_counts_add_up(splits, max_length, policy):
    corpus = RawCorpus("fuzz", {s: [t for t, _ in v] for s, v in splits.items()},
                       {s: [y for _, y in v] for s, v in splits.items()}, ["a", "b"])
    tok = WordTokenizer(min_count=1).fit(corpus.texts["train"])
    lengths = {s: [len(tok.encode(t)) for t, _ in v] for s, v in splits.items()}
    try:
        out = tokenize_corpus(corpus, tok, max_length, policy)
    except InnerworksError as exc:
        event("InnerworksError")
        assert "is empty after tokenisation" in str(exc)
        return
    event("tokenized")
    for s, ds in out:
        m, n = ds.meta, lengths[s]
        assert m["documents_in"] == len(n) and m["empty_dropped"] == sum(x == 0 for x in n)
        assert m["overlength"] == (0 if max_length is None else sum(x > max_length for x in n))
        kept = len(n) - m["empty_dropped"] - (m["overlength"] if policy == "drop" else 0)
        assert len(ds) == kept
        if max_length is not None:
            assert ds.max_length <= max_length
