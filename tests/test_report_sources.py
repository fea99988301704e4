"""Claims by source on their own folders: extensions never enter the paper's count, old files, unknown sources.

The report reads saved JSON only; these tests write small ``results.json`` documents by hand (old and new formats)
and check the page, the loaded model and the terminal table. The shared page helpers live in ``test_report``.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from rich.console import Console
from test_report import headline

from innerworks.report.html import load_report, print_claims_table, render_report, source_counts
from innerworks.utils.io import write_json


def _claim(cid: str, passed: bool | None, **kw) -> dict:
    return {"id": cid, "statement": f"statement {cid}", "expected": "> 0", "measured": 1.0 if passed else -1.0,
            "passed": passed, **kw}


def test_extensions_never_enter_the_paper_count(tmp_path: Path) -> None:
    claims = [_claim("p1", True, source="paper"), _claim("p2", True, source="paper"),
              _claim("e1", False, source="extension"), _claim("e2", False, source="extension"),
              _claim("e3", True, source="extension")]
    write_json(tmp_path / "results.json", {"name": "demo", "claims": claims,
                                           "counts": {"paper": {"passed": 5, "total": 5}}})  # stale: not trusted
    page = render_report(tmp_path).read_text()
    assert headline(page) == {"paper": "2/2", "extension": "1/3"}
    assert 'class="count ok grounded" data-source="paper"' in page
    assert 'class="count bad ours" data-source="extension"' in page
    assert source_counts([json.loads((tmp_path / "results.json").read_text())]) == {
        "paper": {"passed": 2, "total": 2}, "extension": {"passed": 1, "total": 3}}
    console = Console(width=160, record=True, file=io.StringIO())
    assert print_claims_table(load_report(tmp_path).results(), console=console) == (3, 5)
    assert "paper 2/2 · extension 1/3 claims passed" in console.export_text()


def test_old_results_file_without_sources_renders_as_paper(tmp_path: Path) -> None:
    # The format before claims carried a source: no source, reference, counts; thresholds as plain numbers.
    write_json(tmp_path / "results.json", {"name": "old", "claims": [_claim("a", True), _claim("b", False)],
                                           "all_passed": False, "thresholds": {"tol": 0.05, "n_min": 3}})
    r = load_report(tmp_path)
    assert r.counts == {"paper": {"passed": 1, "total": 2}} and r.warnings == []
    page = render_report(tmp_path).read_text()
    assert headline(page) == {"paper": "1/2"}
    assert "Extensions: not part of" not in page and '<tr class="source-group extension"' not in page
    assert '<span class="src-badge grounded">paper</span>' in page and 'class="ref"' not in page
    table = page[page.index('id="thresholds-old"'):]
    table = table[: table.index("</table>")]
    assert "<code>tol</code>" in table and ">0.05<" in table and ">3<" in table
    assert table.count("no reason recorded") == 2


def test_unknown_source_is_noted_and_kept_out_of_the_paper_count(tmp_path: Path) -> None:
    write_json(tmp_path / "results.json", {"name": "demo", "claims": [
        _claim("a", True, source="Author_Code"), _claim("b", True, source="extensoin"), _claim("c", True)],
        "thresholds": {"bad": {"reason": "no value"}, "ok": {"value": 1, "reason": "r"}}})
    r = load_report(tmp_path)
    assert r.counts == {"paper": {"passed": 1, "total": 1}, "author-code": {"passed": 1, "total": 1},
                        "extensoin": {"passed": 1, "total": 1}}
    assert [c.id for c in r.claims] == ["a", "c", "b"]
    assert any("unknown source 'extensoin'" in w for w in r.warnings)
    assert any("thresholds['bad'] needs a 'value'" in w for w in r.warnings)
    page = render_report(tmp_path).read_text()
    assert "Unrecognised source: not part of the paper&#39;s count" in page


def test_report_never_imports_the_code_that_writes_results(tmp_path: Path) -> None:
    import subprocess

    write_json(tmp_path / "results.json", {"name": "demo", "claims": [_claim("a", True, source="paper")]})
    code = ("import sys; from innerworks.report.html import render_report, print_claims_table, load_report; "
            f"render_report({str(tmp_path)!r}); print_claims_table(load_report({str(tmp_path)!r}).results()); "
            "bad = sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['innerworks', 'repro'], ['innerworks', 'train'], ['innerworks', 'dynamics'], "
            "['innerworks', 'attention'], ['innerworks', 'wide'])); print('IMPORTED', bad)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "IMPORTED []" in res.stdout
