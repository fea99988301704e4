"""Reading corpus files: every failure becomes a :class:`~innerworks.errors.DataError` naming the file and line.

Shared by the loaders of the shared corpora and the generic CSV/TSV loader, so that a bad byte, a malformed CSV
record, an empty text or a label outside the class set reads the same whichever loader met it.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = p.write_bytes(b"one\\r\\ntwo\\n")
>>> text_lines(p)
[(1, 'one'), (2, 'two')]
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from innerworks.data.paths import data_root
from innerworks.errors import DataError

EmptyPolicy = Literal["error", "drop"]


def read_text(path: Path) -> str:
    """Whole file as text (UTF-8, optional BOM); a decoding error names the line."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: expected a file, found a directory or special file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None


def text_lines(path: Path) -> list[tuple[int, str]]:
    """``(line_number, line)`` pairs; universal newlines; a final empty line (trailing newline) is not a line."""
    lines = io.StringIO(read_text(path), newline=None).read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return list(enumerate(lines, start=1))


def csv_rows(path: Path, delimiter: str, text: str | None = None) -> list[tuple[int, list[str]]]:
    """``(first_line_of_record, fields)`` for each non-blank CSV record (RFC 4180 quoting, strict); ``text``: the
    file's contents when the caller has read them already (e.g. decompressed), else read from ``path``."""
    text = read_text(path) if text is None else text
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            if row and any(f.strip() for f in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{path}:{start}: malformed CSV row ({exc})") from None
    return rows


def csv_with_header(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """The data records of a comma-separated file that must start with exactly ``header`` and keep its width."""
    rows = csv_rows(path, ",")
    names = ",".join(header)
    if not rows:
        raise DataError(f"{path}: empty file (expected a header '{names}' and rows)")
    header_line, found = rows[0]
    if [h.strip() for h in found] != header:
        raise DataError(f"{path}:{header_line}: expected the header '{names}'")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{path}:{line}: expected {len(header)} columns ({names}), got {len(row)}")
    return rows[1:]


def keep_text(text: str, path: Path, line: int, policy: EmptyPolicy) -> bool:
    """True if the document should be kept; raise or drop empty texts per ``policy``."""
    if text.strip():
        return True
    if policy == "error":
        raise DataError(f"{path}:{line}: empty text (pass empty_text='drop' to skip such rows)")
    return False


def int_label(raw: str, path: Path, line: int, allowed: Sequence[int]) -> int:
    """``raw`` as an integer label, which must be one of ``allowed``."""
    raw = raw.strip()
    if not re.fullmatch(r"[+-]?\d{1,9}", raw) or int(raw) not in allowed:
        raise DataError(f"{path}:{line}: label {raw!r} outside the class set "
                        f"{{{', '.join(str(a) for a in allowed)}}}")
    return int(raw)


def corpus_folder(root: str | os.PathLike | None, folder: str) -> Path:
    """``root``, or ``folder`` under the shared data folder; it must be a directory."""
    path = Path(root) if root is not None else data_root() / folder
    if not path.is_dir():
        raise DataError(f"{path}: corpus folder not found (set INNERWORKS_DATA to the data folder, or pass root)")
    return path
