"""The claims table for the terminal (rich): every claim with its source and reference, counted per source.

The title gives passed/total per source ("paper 21/24 · extension 9/10 claims passed"), recomputed from the claims
themselves, so an extension never adds to the paper's number. Reads ``results.json`` documents only.
"""

from __future__ import annotations

from typing import Any

from innerworks.report.model import format_value
from innerworks.report.sources import counts_text, group_rank, source_counts, source_label, source_of

_COLUMNS = (("stage", {}), ("claim", {"ratio": 3}), ("source", {}), ("expected", {}), ("measured", {}),
            ("result", {}))


def _claims_in_order(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's claim objects, paper-grounded first, then extensions (stable, as on the page)."""
    claims = doc.get("claims") if isinstance(doc.get("claims"), list) else []
    return sorted((c for c in claims if isinstance(c, dict)), key=lambda c: group_rank(source_of(c)))


def _claim_row(name: str, c: dict[str, Any]) -> tuple[Any, ...]:
    """One table row: stage, id + statement, source + reference (dimmed), expected, measured, verdict."""
    from rich.text import Text

    claim = Text(str(c.get("id", "?")), style="bold")
    if c.get("statement"):
        claim.append("\n" + str(c["statement"]), style="dim")
    source = source_of(c)
    src = Text(source_label(source), style="magenta" if group_rank(source) else "")
    if c.get("reference"):
        src.append("\n" + str(c["reference"]), style="dim")
    ok = c.get("passed")
    if isinstance(ok, bool):
        verdict = Text("PASS", style="bold green") if ok else Text("FAIL", style="bold red")
    else:
        verdict = Text("N/A", style="bold yellow")
    return name, claim, src, format_value(c.get("expected")), format_value(c.get("measured")), verdict


def print_claims_table(results: list[dict[str, Any]], console: Any | None = None) -> tuple[int, int]:
    """Print one rich table of every claim, titled with the counts per source; return ``(passed, total)``.

    ``results`` holds ``results.json`` documents (``name`` and ``claims``). A document may also carry
    ``status: "failed"`` and ``error`` (as :meth:`Report.results` gives): that stage gets a row saying so. The
    returned pair counts every claim, all sources together; :func:`source_counts` gives them per source.

    >>> import io
    >>> from rich.console import Console
    >>> doc = {"name": "demo", "claims": [{"id": "a", "statement": "s", "expected": "> 0", "measured": 1.0,
    ...                                     "passed": True, "source": "paper", "reference": "ICLR 2021 abstract"},
    ...                                    {"id": "b", "statement": "t", "expected": "> 0", "measured": -1.0,
    ...                                     "passed": False, "source": "extension"}]}
    >>> con = Console(width=100, file=io.StringIO(), record=True)
    >>> print_claims_table([doc], console=con)
    (1, 2)
    >>> "paper 1/1 · extension 0/1 claims passed" in con.export_text()
    True
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    table = Table(show_lines=False, header_style="bold", expand=False)
    for col, kw in _COLUMNS:
        table.add_column(col, overflow="fold", **kw)
    failed_stages = []
    for doc in results:
        name = str(doc.get("name", "?"))
        if doc.get("status", "ok") != "ok":
            failed_stages.append(name)
            table.add_row(name, Text(f"stage failed: {doc.get('error') or 'no error recorded'}", style="red"),
                          "", "", "", Text("FAIL", style="bold red"))
        for c in _claims_in_order(doc):
            table.add_row(*_claim_row(name, c))
    counts = source_counts(results)
    passed = sum(n["passed"] for n in counts.values())
    total = sum(n["total"] for n in counts.values())
    colour = "green" if passed == total and not failed_stages else "red"
    title = f"{counts_text(counts)} claims passed" if counts else "no claims"
    table.title = f"[{colour}]{escape(title)}[/]"
    if failed_stages:
        table.title += f"[red]; stage(s) failed: {escape(', '.join(failed_stages))}[/]"
    console.print(table)
    return passed, total
