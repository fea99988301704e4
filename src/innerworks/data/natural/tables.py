"""The user's own labelled text: :func:`load_csv` reads a CSV or TSV file (or train/val/test files) into a
:class:`~.corpus.RawCorpus`.

Columns are picked by name or index, labels are mapped through an optional ``label_map`` (``None`` drops a row), and
whatever split the files do not provide is made seeded and stratified, as for the shared corpora. Every malformed
row is a :class:`~innerworks.errors.DataError` naming the file and line; a bad setting is a
:class:`~innerworks.errors.ConfigError`.

>>> _delimiter_for(Path("a.TSV"), None) == "\\t"
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from innerworks.data.natural.corpus import (
    DEFAULT_FRACTIONS,
    SPLITS,
    RawCorpus,
    carve_val,
    check_fractions,
    finish_corpus,
    split_pool,
)
from innerworks.data.natural.files import EmptyPolicy, csv_rows, keep_text
from innerworks.errors import ConfigError, DataError

_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
ColumnSpec = str | int | Sequence[str | int]
Table = list[tuple[int, str, str]]  # (line, text, raw label) per kept row


def _delimiter_for(path: Path, delimiter: str | None) -> str:
    if delimiter is not None:
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
            raise ConfigError(f"delimiter: expected one character (not a quote or newline), got {delimiter!r}")
        return delimiter
    suffix = path.suffix.lower()
    if suffix not in _DELIMITERS:
        raise ConfigError(f"{path}: cannot tell the delimiter from the suffix '{suffix}' "
                          "(use .csv or .tsv, or pass delimiter)")
    return _DELIMITERS[suffix]


def _column(spec: str | int, header: list[str] | None, path: Path, what: str) -> int:
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise ConfigError(f"{what}: expected a column name or a 0-based index, got {spec!r}")
    if isinstance(spec, int):
        if spec < 0 or (header is not None and spec >= len(header)):
            width = f"0..{len(header) - 1}" if header is not None else ">= 0"
            raise ConfigError(f"{path}: {what} {spec} out of range (expected {width})")
        return spec
    if header is None:
        raise ConfigError(f"{what}: {spec!r} is a column name, but has_header is False (use a 0-based index)")
    names = [h.strip() for h in header]
    if spec.strip() not in names:
        shown = ", ".join(n if n.isprintable() else repr(n) for n in names)
        raise DataError(f"{path}:1: no column {spec!r} for {what} (header has: {shown})")
    return names.index(spec.strip())


def _normalise_label_map(label_map: Mapping[Any, Any] | None) -> dict[str, int | None] | None:
    if label_map is None:
        return None
    if not isinstance(label_map, Mapping) or not label_map:
        raise ConfigError("label_map: expected a non-empty mapping from raw label to class index (or null to drop)")
    out: dict[str, int | None] = {}
    for k, v in label_map.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ConfigError(f"label_map[{k!r}]: expected a class index >= 0 or null, got {v!r}")
        out[str(k).strip()] = v
    used = sorted({v for v in out.values() if v is not None})
    if not used:
        raise ConfigError("label_map: every label is mapped to null (no classes left)")
    if used != list(range(len(used))):
        missing = sorted(set(range(used[-1] + 1)) - set(used))
        raise ConfigError(f"label_map: class indices must be 0..{used[-1]} without gaps; missing {missing}")
    return out


def _read_table(path: Path, text_cols: list[str | int], label_col: str | int, delimiter: str | None,
                has_header: bool, empty_text: EmptyPolicy) -> tuple[Table, int]:
    """``[(line, text, raw_label)]`` and the number of empty texts dropped."""
    delim = _delimiter_for(path, delimiter)
    rows = csv_rows(path, delim)
    header = None
    if has_header:
        if not rows:
            raise DataError(f"{path}: empty file (expected a header row and data rows)")
        header = rows[0][1]
        rows = rows[1:]
    t_idx = [_column(c, header, path, "text_column") for c in text_cols]
    y_idx = _column(label_col, header, path, "label_column")
    width = len(header) if header is not None else None
    need = max([*t_idx, y_idx]) + 1
    out: Table = []
    dropped = 0
    for line, row in rows:
        if width is not None and len(row) != width:
            raise DataError(f"{path}:{line}: expected {width} columns (as in the header), got {len(row)}")
        if len(row) < need:
            raise DataError(f"{path}:{line}: expected at least {need} columns, got {len(row)}")
        doc = "\n".join(row[i] for i in t_idx)
        if keep_text(doc, path, line, empty_text):
            out.append((line, doc, row[y_idx].strip()))
        else:
            dropped += 1
    if not out:
        raise DataError(f"{path}: no data rows (empty dataset)")
    return out, dropped


def _numeric_key(raw: str) -> tuple[int, float | str]:
    try:
        return (0, float(raw))
    except ValueError:
        return (1, raw)


class _ClassSet:
    """How raw labels become classes: the class names, the lookup (``None``: drop the row), and the error wording
    for a label outside it. Decided by ``label_map``, else ``class_names``, else the labels of the train file."""

    def __init__(self, lmap: dict[str, int | None] | None, class_names: Sequence[str] | None, train: Table) -> None:
        if lmap is not None:
            n_classes = max(v for v in lmap.values() if v is not None) + 1
            if class_names is not None and len(class_names) != n_classes:
                raise ConfigError(f"class_names: label_map has {n_classes} classes, class_names has "
                                  f"{len(class_names)}")
            self.names = list(class_names) if class_names is not None else [
                "/".join(k for k, v in lmap.items() if v == c) for c in range(n_classes)]
            self.lookup: dict[str, int | None] = dict(lmap)
            self.expected = ", ".join(lmap)
            self.missing_msg = "not in label_map (expected one of {})"
        elif class_names is not None:
            self.names = [str(c) for c in class_names]
            if not self.names or len(set(self.names)) != len(self.names):
                raise ConfigError("class_names: expected distinct names")
            self.lookup = {n: i for i, n in enumerate(self.names)}
            self.lookup.update({str(i): i for i in range(len(self.names)) if str(i) not in self.lookup})
            self.expected = f"a class name ({', '.join(self.names)}) or an index 0..{len(self.names) - 1}"
            self.missing_msg = "outside the class set (expected {})"
        else:
            self.names = sorted({raw for _, _, raw in train}, key=_numeric_key)
            self.lookup = {n: i for i, n in enumerate(self.names)}
            self.expected = ", ".join(self.names)
            self.missing_msg = "outside the class set (labels in the train file: {})"

    def label(self, tables: dict[str, Table], files: Mapping[str, Path | None],
              ) -> tuple[dict[str, tuple[list[str], list[int]]], int]:
        """Texts and class indices per file, and how many rows ``label_map`` dropped."""
        map_dropped = 0
        data: dict[str, tuple[list[str], list[int]]] = {}
        for s, rows in tables.items():
            texts: list[str] = []
            labels: list[int] = []
            for line, doc, raw in rows:
                if raw not in self.lookup:
                    shown = self.expected if len(self.expected) <= 200 else self.expected[:200] + "..."
                    raise DataError(f"{files[s]}:{line}: label {raw!r} " + self.missing_msg.format(shown))
                y = self.lookup[raw]
                if y is None:
                    map_dropped += 1
                    continue
                texts.append(doc)
                labels.append(y)
            if not texts:
                raise DataError(f"{files[s]}: no rows left after label_map (empty dataset)")
            data[s] = (texts, labels)
        return data, map_dropped


def _splits(data: dict[str, tuple[list[str], list[int]]], fractions: Sequence[float], seed: int,
            ) -> tuple[dict[str, list[str]], dict[str, list[int]], str]:
    """Texts and labels for train/val/test from the files given, splitting off what is missing; and the rule used."""
    if "test" not in data:
        t, y = split_pool(*data["train"], fractions, seed)
        return t, y, "seeded stratified split of one file"
    if "val" not in data:
        tr, va, share = carve_val(data["train"], fractions, seed)
        data = {**data, "train": tr, "val": va}
        rule = f"train/test files; val = seeded stratified {share:.4g} of train"
    else:
        rule = "train/val/test files"
    return {s: data[s][0] for s in SPLITS}, {s: data[s][1] for s in SPLITS}, rule


def load_csv(path: str | os.PathLike, text_column: ColumnSpec, label_column: str | int,
             label_map: Mapping[Any, int | None] | None = None, delimiter: str | None = None,
             has_header: bool = True, *, class_names: Sequence[str] | None = None,
             val_path: str | os.PathLike | None = None, test_path: str | os.PathLike | None = None,
             fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0, dedupe: bool = True,
             empty_text: EmptyPolicy = "error", name: str = "csv") -> RawCorpus:
    """Your own labelled text: a CSV or TSV file (delimiter from the suffix unless given), one document per row.

    Args:
        path: the data file (the train file when ``test_path`` is given).
        text_column: column name or 0-based index; a list joins several columns with a newline.
        label_column: column name or 0-based index.
        label_map: raw label -> class index ``0..C-1``; ``None`` as a value drops those rows (e.g. 3-star reviews).
            Any other label is an error. Without a map, the distinct labels of ``path`` become the classes (numeric
            order if all numeric), unless ``class_names`` is given: then a label must be a class name or an index.
        class_names: names for the classes (``len == C`` when ``label_map`` is given).
        val_path, test_path: optional extra files; what is missing is split off seeded and stratified:
            one file -> ``fractions``; train+test -> val taken from train so train:val = fractions[0]:fractions[1].
        dedupe: remove val/test rows whose text occurs in an earlier split (counted in ``source``).
        empty_text: ``"error"`` (default) or ``"drop"`` (counted in ``source["empty_dropped"]``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.tsv"
    >>> _ = p.write_text("stars\\treview\\n" + "".join(f"{1 + i % 5}\\treview {i}\\n" for i in range(50)))
    >>> c = load_csv(p, "review", "stars", label_map={1: 0, 2: 0, 3: None, 4: 1, 5: 1})
    >>> c.class_names, sum(c.counts().values()), c.source["label_map_dropped"]
    (['1/2', '4/5'], 40, 10)
    >>> p.write_text("stars\\treview\\n7\\tbad label\\n") and None
    >>> load_csv(p, "review", "stars", label_map={1: 0, 2: 1})  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    innerworks.errors.DataError: .../r.tsv:2: label '7' not in label_map (expected one of 1, 2)
    """
    fractions = check_fractions(fractions)
    if empty_text not in ("error", "drop"):
        raise ConfigError(f"empty_text: expected 'error' or 'drop', got {empty_text!r}")
    text_cols = [text_column] if isinstance(text_column, (str, int)) else list(text_column)
    if not text_cols:
        raise ConfigError("text_column: expected at least one column")
    lmap = _normalise_label_map(label_map)
    files = {"train": Path(path), "val": Path(val_path) if val_path else None,
             "test": Path(test_path) if test_path else None}
    if files["val"] is not None and files["test"] is None:
        raise ConfigError("val_path given without test_path (give test_path, or neither)")
    tables: dict[str, Table] = {}
    empty_dropped = 0
    for s, p in files.items():
        if p is not None:
            tables[s], d = _read_table(p, text_cols, label_column, delimiter, has_header, empty_text)
            empty_dropped += d
    classes = _ClassSet(lmap, class_names, tables["train"])
    data, map_dropped = classes.label(tables, files)
    t, y, rule = _splits(data, fractions, seed)
    source = {"path": str(files["train"]), "files": {s: str(p) for s, p in files.items() if p is not None},
              "text_column": text_column if isinstance(text_column, (str, int)) else list(text_column),
              "label_column": label_column, "label_map": lmap, "label_map_dropped": map_dropped,
              "empty_dropped": empty_dropped, "split_rule": rule, "fractions": list(fractions), "seed": seed}
    return finish_corpus(name, t, y, classes.names, source, dedupe)
