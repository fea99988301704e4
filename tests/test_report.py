"""The HTML report: reading a run folder, the page's content and self-containment, the CLI, the terminal table."""

from __future__ import annotations

import io
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots
from rich.console import Console
from typer.testing import CliRunner

from innerworks.errors import InnerworksError
from innerworks.report.figures import save_figure
from innerworks.report.html import (
    figure_kind,
    figure_name,
    format_value,
    load_report,
    print_claims_table,
    render_report,
)
from innerworks.repro.claims import Claim, ReproResult, Source, Thresholds, write_results
from innerworks.utils.io import write_json

WIDE_ERROR = "RuntimeError: kernel diverged <script>alert('x')</script>"
TASKS, MODELS = ("scan", "copy"), ("gru", "lstm")


# ---------------------------------------------------------------------------------------------------------------------
# A small but realistic `repro all` output folder, made with the real save_figure() / write_results()
# ---------------------------------------------------------------------------------------------------------------------


def _mpl_line(x: np.ndarray, y: np.ndarray, log: bool = False):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(x, y)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    return fig


def _integration_stage(d: Path, rng: np.random.Generator) -> list[Claim]:
    # 3-D PCA of hidden-state trajectories with fixed points coloured by stability, one per cell type.
    for cell in MODELS:
        fig = go.Figure()
        for k in range(3):
            t = np.linspace(0, 4, 60)
            fig.add_trace(go.Scatter3d(x=np.cos(t + k) * np.exp(-t / 4), y=np.sin(t + k) * np.exp(-t / 4),
                                       z=t / 4 + 0.1 * k, mode="lines", name=f"trajectory {k}"))
        stable = np.array([True, True, False, True, False])
        fig.add_trace(go.Scatter3d(x=rng.normal(size=5), y=rng.normal(size=5), z=rng.normal(size=5), mode="markers",
                                   marker={"color": np.where(stable, "#1f77b4", "#d62728"), "size": 5},
                                   name="fixed points (blue stable, red unstable)"))
        t = np.linspace(0, 4, 60)
        save_figure(d, f"pca3d_{cell}", plotly_fig=fig, mpl_fig=_mpl_line(t, np.sin(t)),
                    title=f"Hidden-state PCA, {cell}")
    # Eigenvalue spectrum of the Jacobian at a fixed point, against the unit circle.
    ev = rng.normal(size=40) * 0.4 + 1j * rng.normal(size=40) * 0.3
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 100))
    spec = go.Figure([go.Scatter(x=ev.real, y=ev.imag, mode="markers", name="eigenvalues"),
                      go.Scatter(x=circle.real, y=circle.imag, mode="lines", name="unit circle")])
    spec.update_yaxes(scaleanchor="x")
    save_figure(d, "eigenspectrum", plotly_fig=spec, mpl_fig=_mpl_line(ev.real, ev.imag),
                title="Jacobian eigenvalues at the fixed points")
    # The extension sits between two paper-grounded claims: the page must still list it after them.
    return [
        Claim("fixed_point_manifold_gru", "GRU fixed points lie on a low-dimensional manifold", ">= 0.9 var in 2 PCs",
              0.94, True, figure="figures/pca3d_gru.png", source=Source.PAPER, reference="ICLR 2019 §4"),
        Claim("fixed_point_manifold_lstm", "LSTM fixed points lie on a low-dimensional manifold",
              ">= 0.9 var in 2 PCs", 0.71, False, figure="figures/pca3d_lstm.png", source=Source.EXTENSION,
              reference="notes §8.3"),
        Claim("slow_mode", "One eigenvalue near 1 at each fixed point", "|1 - max|λ|| < 0.05", 0.012, True,
              figure="figures/eigenspectrum.png", source=Source.PREDECESSOR, reference="NeurIPS 2019 §4.5"),
    ]


def _attention_stage(d: Path, rng: np.random.Generator) -> list[Claim]:
    # Heatmaps: sample, temporal-only, reconstructed from chosen terms; one figure per task x model.
    for task in TASKS:
        for model in MODELS:
            fig = make_subplots(rows=1, cols=3, subplot_titles=("sample", "temporal only", "reconstructed"))
            for col in (1, 2, 3):
                fig.add_trace(go.Heatmap(z=rng.random((10, 12)), coloraxis="coloraxis"), row=1, col=col)
            save_figure(d, f"attention_{task}_{model}", plotly_fig=fig, title=f"Attention, {task} / {model}")
    # A figure that exists only as a static PNG, and one whose JSON is broken.
    save_figure(d, "alignment", mpl_fig=_mpl_line(np.arange(5), np.arange(5) ** 2))
    (d / "figures" / "broken.plotly.json").write_text('{"data": [', encoding="utf-8")
    return [
        Claim("temporal_dominates", "The temporal component explains most attention", ">= 0.8", [0.86, 0.91],
              True, figure="figures/attention_copy_lstm.png", details={"per_task": {"scan": 0.86, "copy": 0.91}},
              reference="ICLR 2021 abstract"),
        Claim("reconstruction_error", "Chosen terms reconstruct attention", "< 0.1", float("nan"), None,
              figure="figures/attention_scan_gru.png", source=Source.AUTHOR_CODE, reference="decompose.py"),
        Claim("alignment_monotone", "Alignment is monotone", "true", True, True, figure="figures/alignment.png",
              source=Source.EXTENSION),
    ]


THRESHOLDS = Thresholds(var_min=(0.9, "issue: '>= 90% of the variance in 2 PCs'"),
                        eig_tol=(0.05, "the paper's Fig. 3 <b>tolerance</b>"))


def _wide_loglog(d: Path) -> None:
    widths = np.array([32, 64, 128, 256, 512])
    err = 3.0 * widths**-1.0
    fig = go.Figure([
        go.Scatter(x=widths, y=err, mode="markers", name="measured"),
        go.Scatter(x=widths, y=2.9 * widths**-0.98, mode="lines", name="fitted slope -0.98"),
        go.Scatter(x=widths, y=3.0 * widths**-1.0, mode="lines", line={"dash": "dash"}, name="predicted slope -1"),
    ])
    fig.update_xaxes(type="log", title="width")
    fig.update_yaxes(type="log", title="|NTK - limit|")
    save_figure(d, "loglog_ntk", plotly_fig=fig, mpl_fig=_mpl_line(widths, err, log=True),
                title="Finite-width correction vs width")


def build_fake_run(root: Path, seed: int = 0, wide_ok: bool = False) -> tuple[Path, list[str]]:
    """A `repro all` folder: integration + attention stages, and a wide stage that failed (no results.json).

    Sources: paper 2/2, predecessor 1/1, author code 0/1 (not measured), extension 1/2 (4/6 all together).
    Returns the folder and the ids of every claim written, in page order (paper-grounded first in each stage).
    """
    rng = np.random.default_rng(seed)
    run = root / "run"
    stages = []
    ids: list[str] = []
    for name, make in (("integration", _integration_stage), ("attention", _attention_stage)):
        claims = make(run / name, rng)
        extra = {"seed": seed, "config": {"stage": name}, "thresholds": THRESHOLDS.to_dict()}
        write_results(run / name, ReproResult(name, claims, extra=extra))
        stages.append({"name": name, "dir": name, "wall_time_s": 12.5, "status": "ok", "error": None})
        ids += [c.id for c in sorted(claims, key=lambda c: c.source == Source.EXTENSION)]
    _wide_loglog(run / "wide")  # it saved a figure before failing
    if wide_ok:
        claims = [Claim("ntk_slope", "NTK correction scales as 1/width", "slope in [-1.1, -0.9]", -0.98, True,
                        figure="figures/loglog_ntk.png")]
        write_results(run / "wide", ReproResult("wide", claims))
        ids += [c.id for c in claims]
    stages.append({"name": "wide", "dir": "wide", "wall_time_s": 3.25, "status": "ok" if wide_ok else "failed",
                   "error": None if wide_ok else WIDE_ERROR})
    write_json(run / "repro.json", {
        "stages": stages,
        "provenance": {"versions": {"python": "3.11.7", "torch": "2.13.0", "plotly": "6.0.0"},
                       "git_commit": "0123456789abcdef0123456789abcdef01234567", "platform": "Linux-x86_64",
                       "cuda": None},
        "config": {"quick": True, "stages": ["integration", "attention", "wide"]},
        "seed": seed, "device": "cpu", "quick": True, "total_wall_time_s": 28.25,
    })
    return run, ids


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    return build_fake_run(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(fake_run: tuple[Path, list[str]]) -> str:
    path = render_report(fake_run[0])
    assert path == fake_run[0] / "report.html"
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others: it is meant to be shared
    return path.read_text(encoding="utf-8")


class _Tags(HTMLParser):
    """Collect start tags with their attributes, and the text of <script type="application/json"> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.json_scripts: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "script" and a.get("type") == "application/json":
            self._in = a["id"] or ""
            self.json_scripts[self._in] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.json_scripts[self._in] += data


def parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    return p


_COUNT = re.compile(r'<span class="count [^"]*" data-source="([^"]+)"><span class="big">(\d+/\d+)</span>')
_GROUND_TRUTH = {"paper": "2/2", "predecessor": "1/1", "author-code": "0/1", "extension": "1/2"}


def headline(page: str) -> dict[str, str]:
    """The big numbers at the top of the page: passed/total per source."""
    verdict = page[page.index('id="verdict"'):page.index('id="verdict-secondary"')]
    return dict(_COUNT.findall(verdict))


# ---------------------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------------------


def test_claims_table_lists_every_claim_with_verdict_and_links(fake_run, page) -> None:
    run, ids = fake_run
    tags = parse(page)
    rows = [a for t, a in tags.tags if t == "tr" and "claim-row" in (a.get("class") or "")]
    assert [r["data-claim-id"] for r in rows] == ids
    ids_in_page = {a["id"] for _, a in tags.tags if a.get("id")}
    links = [a["href"] for t, a in tags.tags if t == "a" and "figlink" in (a.get("class") or "")]
    assert len(links) == len(ids)  # every claim of the fake run cites a figure that exists
    for href in links:  # each figure link jumps to an element of the page
        assert href.startswith("#") and href[1:] in ids_in_page, href
    pngs = [a["href"] for t, a in tags.tags if t == "a" and "pnglink" in (a.get("class") or "")]
    assert len(pngs) == 4  # the claims whose figure has a static PNG: pca3d x2, eigenspectrum, alignment
    for href in pngs:
        assert (run / href).is_file(), href
    assert page.count('class="badge pass"') >= 4 and 'class="badge fail">FAIL' in page
    assert 'class="badge na">N/A' in page  # passed=None (NaN measured)
    assert 'class="big">4/6' not in page  # one mixed total is never the headline


def test_failed_stage_shown_with_escaped_error(page) -> None:
    assert WIDE_ERROR not in page  # never raw HTML
    assert "RuntimeError: kernel diverged &lt;script&gt;" in page
    assert "STAGE FAILED" in page and "1 stage(s) failed" in page
    # The figure the stage saved before failing is still shown.
    assert 'id="fig-wide-loglog_ntk"' in page


def test_broken_and_static_only_figures(page) -> None:
    assert "broken.plotly.json:1: invalid JSON" in page
    assert 'class="fig-error"' in page
    assert re.search(r'<img class="static-fig" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', page)


def test_figures_embedded_and_round_trip(fake_run, page) -> None:
    run, _ = fake_run
    tags = parse(page)
    plotly_files = sorted(run.glob("*/figures/*.plotly.json"))
    good = [p for p in plotly_files if p.name != "broken.plotly.json"]
    assert len(tags.json_scripts) == len(good) == 8
    for p in good:
        stage, name = p.parent.parent.name, p.name[: -len(".plotly.json")]
        embedded = json.loads(tags.json_scripts[f"fig-{stage}-{name}-data"])
        original = json.loads(p.read_text())
        assert embedded["data"] == original["data"]
        assert embedded["layout"]["title"] == original["layout"]["title"]
    plots = [a for t, a in tags.tags if t == "div" and "plot" in (a.get("class") or "").split()]
    assert len(plots) == 8
    assert sum("gl3d" in a["class"] for a in plots) == 2


def test_selector_groups_figures_by_kind(page) -> None:
    tags = parse(page)
    selects = [a for t, a in tags.tags if t == "select"]
    assert [s["data-group"] for s in selects] == ["group-integration-pca3d", "group-attention-attention"]
    options = [a["value"] for t, a in tags.tags if t == "option"]
    assert options == ["fig-integration-pca3d_gru", "fig-integration-pca3d_lstm"] + [
        f"fig-attention-attention_{t}_{m}" for t in sorted(TASKS) for m in MODELS
    ]
    assert ">copy_gru</option>" in page
    # Only the first variant of each group is shown at load.
    hidden = [a["id"] for t, a in tags.tags if t == "div" and "fig-variant" in (a.get("class") or "") and "hidden" in a]
    assert len(hidden) == 1 + 3


def test_page_is_self_contained(page) -> None:
    from plotly.offline import get_plotlyjs

    for tag, attrs in parse(page).tags:
        for key in ("src", "href"):
            value = (attrs.get(key) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//")), (tag, attrs)
        if tag == "script":
            assert "src" not in attrs, attrs
        assert tag != "link", attrs
    assert page.count(get_plotlyjs()[:400]) == 1  # plotly.js inlined exactly once
    assert page.count("<script") == page.count("</script>")


def test_provenance_section(page) -> None:
    for text in ("0123456789ab", "2.13.0", "28.2 s", "12.5 s", "3.2 s", "quick", "Linux-x86_64", '"stages"'):
        assert text in page, text


def test_rerender_reads_saved_results_only(fake_run, tmp_path: Path) -> None:
    run, _ = fake_run
    doc = json.loads((run / "integration" / "results.json").read_text())
    doc["claims"][1]["measured"] = 0.93
    doc["claims"][1]["passed"] = True
    write_json(run / "integration" / "results.json", doc)
    out = render_report(run, output=tmp_path / "elsewhere" / "again.html")
    assert out == tmp_path / "elsewhere" / "again.html"
    page = out.read_text()
    # The extension that now passes moves the extension count only; the paper's numbers stay as they were.
    assert headline(page) == {**_GROUND_TRUTH, "extension": "2/2"}
    assert "all claims together 5/6" in page
    pngs = [a["href"] for t, a in parse(page).tags if t == "a" and "pnglink" in (a.get("class") or "")]
    assert pngs and all((out.parent / href).resolve().is_file() for href in pngs)  # links lead back to the run
    doc["claims"][1]["measured"], doc["claims"][1]["passed"] = 0.71, False
    write_json(run / "integration" / "results.json", doc)


def test_script_breaking_text_in_figure_is_escaped(tmp_path: Path) -> None:
    nasty = "</script><script>alert(1)</script> & <!--"
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, float("nan")], name=nasty))
    save_figure(tmp_path, "line_demo", plotly_fig=fig, title=nasty)
    write_results(tmp_path, ReproResult("demo", [Claim("c", nasty, "x", float("inf"), False, figure="line_demo")]))
    page = render_report(tmp_path).read_text()
    assert nasty not in page
    tags = parse(page)
    embedded = json.loads(tags.json_scripts["fig-demo-line_demo-data"])
    assert embedded["data"][0]["name"] == nasty
    assert embedded["data"][0]["y"][1] is None


# ---------------------------------------------------------------------------------------------------------------------
# Claims by source: the paper's count, the extensions apart, references, thresholds
# ---------------------------------------------------------------------------------------------------------------------


def test_headline_counts_per_source_never_one_mixed_total(page) -> None:
    assert headline(page) == _GROUND_TRUTH
    assert list(headline(page)) == ["paper", "predecessor", "author-code", "extension"]  # the paper's first
    verdict = page[page.index('id="verdict"'):page.index("</section>")]
    secondary = verdict[verdict.index('id="verdict-secondary"'):]
    assert "all claims together 4/6" in secondary and "not part of the paper's count" in secondary
    # Each stage card and the per-stage table give counts per source as well.
    assert "paper 1/1 · predecessor 1/1 · extension 0/1" in page
    assert "paper 1/1 · author code 0/1 · extension 1/1" in page


def _stage_rows(page: str, stage: str) -> list[tuple[str, dict[str, str | None]]]:
    body = page[page.index(f'<tbody class="stage-claims" data-stage="{stage}">'):]
    body = body[: body.index("</tbody>")]
    return [(t, a) for t, a in parse(body).tags if t == "tr"]


def test_claims_grouped_by_source_extensions_last_and_labelled(page) -> None:
    rows = _stage_rows(page, "integration")
    kinds = [a.get("data-claim-id") or f"[{a.get('data-group') or a['class']}]" for _, a in rows]
    assert kinds == ["[stage-head]", "[paper-grounded]", "fixed_point_manifold_gru", "slow_mode", "[extension]",
                     "fixed_point_manifold_lstm"]
    assert [a["data-source"] for _, a in rows if a.get("data-claim-id")] == ["paper", "predecessor", "extension"]
    assert page.count("Extensions: not part of the paper&#39;s count") == 2  # one group per stage that has them
    group = page[page.index('<tr class="source-group extension" data-group="extension">'):]
    assert "extension 0/1" in group[: group.index("</tr>")]  # the group is counted on its own
    # Every claim shows its source and reference.
    for ref in ("ICLR 2019 §4", "NeurIPS 2019 §4.5", "notes §8.3", "ICLR 2021 abstract", "decompose.py"):
        assert f'<div class="ref">{ref}</div>' in page, ref
    assert '<span class="src-badge grounded">author code</span>' in page
    assert '<span class="src-badge ours">extension</span>' in page


def test_thresholds_table_with_reasons(fake_run, page) -> None:
    table = page[page.index('id="thresholds-integration"'):]
    table = table[: table.index("</table>")]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", table, re.S)]
    assert cells == ["var_min", "0.9", "issue: &#39;&gt;= 90% of the variance in 2 PCs&#39;",
                     "eig_tol", "0.05", "the paper&#39;s Fig. 3 &lt;b&gt;tolerance&lt;/b&gt;"]
    assert 'id="thresholds-attention"' in page and 'id="thresholds-wide"' not in page
    further = page[page.index("Further results saved by"):page.index("</section>", page.index("Further results"))]
    assert "seed" in further and "thresholds" not in further and "counts" not in further  # not repeated there
    stage = load_report(fake_run[0]).stages[0]
    assert [(t.name, t.value, t.reason) for t in stage.thresholds][1] == ("eig_tol", "0.05",
                                                                        "the paper's Fig. 3 <b>tolerance</b>")


# ---------------------------------------------------------------------------------------------------------------------
# Other folder layouts and bad input
# ---------------------------------------------------------------------------------------------------------------------


def test_single_stage_folder(fake_run) -> None:
    run, _ = fake_run
    r = load_report(run / "integration")
    assert [s.name for s in r.stages] == ["integration"]
    assert (r.n_passed, r.n_claims, r.seed) == (2, 3, 0)
    assert r.counts == {"paper": {"passed": 1, "total": 1}, "predecessor": {"passed": 1, "total": 1},
                        "extension": {"passed": 0, "total": 1}}
    page = render_report(run / "integration").read_text()
    assert page.count('class="claim-row') == 3
    assert 'href="figures/pca3d_gru.png"' in page


def test_folder_of_stage_folders_without_repro_json(tmp_path: Path) -> None:
    for name in ("b_stage", "a_stage"):
        write_results(tmp_path / name, ReproResult(name, [Claim(f"{name}_claim", "s", "> 0", 1, True)]))
    r = load_report(tmp_path)
    assert [s.name for s in r.stages] == ["a_stage", "b_stage"]
    assert r.n_passed == 2


def test_malformed_files_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "results.json").write_text("{oops")
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "results.json").write_text(json.dumps({"name": "s2", "claims": [1, {"id": "ok"}]}))
    write_json(tmp_path / "repro.json", {"stages": [{"name": "s1", "dir": "s1", "status": "ok"},
                                                     {"name": "s2", "dir": "s2", "status": "ok"}, "junk"]})
    r = load_report(tmp_path)
    s1, s2 = r.stages
    assert s1.status == "failed" and "results.json:1: invalid JSON" in s1.error
    assert s2.status == "ok" and [c.id for c in s2.claims] == ["ok"] and s2.claims[0].verdict == "N/A"
    assert any("claims[0] is not an object" in w for w in r.warnings)
    assert any("stages[2]" in w for w in r.warnings)
    (tmp_path / "repro.json").write_text("[1,")
    r = load_report(tmp_path)  # falls back to the stage folders it finds
    assert [s.name for s in r.stages] == ["s1", "s2"] and "invalid JSON" in r.warnings[0]
    assert render_report(tmp_path).is_file()


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(InnerworksError, match="no repro.json or results.json"):
        load_report(tmp_path)
    with pytest.raises(InnerworksError, match="folder not found"):
        load_report(tmp_path / "missing")


@pytest.mark.parametrize(
    ("name", "kind", "variant"),
    [("attention_scan_gru", "attention", "scan_gru"), ("fixed_points__lstm_n3", "fixed_points", "lstm_n3"),
     ("eigenspectrum", "eigenspectrum", ""), ("_x", "_x", ""), ("pca3d_gru", "pca3d", "gru")],
)
def test_figure_naming_rule(name: str, kind: str, variant: str) -> None:
    assert figure_kind(name) == (kind, variant)


def test_figure_name_and_format_value() -> None:
    assert figure_name("figures/a_b.plotly.json") == figure_name("a_b.svg") == figure_name("a_b") == "a_b"
    assert format_value(1 / 3) == "0.3333"
    assert format_value(list(range(20))).endswith(", …]")
    assert format_value("x" * 500).endswith("…") and len(format_value("x" * 500)) == 160


# ---------------------------------------------------------------------------------------------------------------------
# Terminal and CLI
# ---------------------------------------------------------------------------------------------------------------------


def test_print_claims_table(fake_run) -> None:
    run, ids = fake_run
    console = Console(width=160, record=True, file=io.StringIO())
    passed, total = print_claims_table(load_report(run).results(), console=console)
    text = console.export_text()
    assert (passed, total) == (4, 6)
    for claim_id in ids:
        assert claim_id in text
    title = "paper 2/2 · predecessor 1/1 · author code 0/1 · extension 1/2 claims passed"
    assert title in text and "stage(s) failed: wide" in text and "kernel diverged" in text
    assert "4/6" not in text  # no mixed total in the title
    assert text.count("PASS") == 4 and text.count("N/A") == 1
    for word in ("source", "predecessor", "author code", "extension", "NeurIPS 2019 §4.5", "ICLR 2021 abstract"):
        assert word in text, word
    # Within a stage, the extension comes after the paper-grounded claims.
    assert text.index("fixed_point_manifold_gru") < text.index("slow_mode") < text.index("fixed_point_manifold_lstm")


def test_cli_report_command(fake_run) -> None:
    from innerworks.cli import app

    run, ids = fake_run
    (run / "report.html").unlink(missing_ok=True)
    res = CliRunner().invoke(app, ["report", str(run)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert (run / "report.html").is_file()
    assert f"report: {run / 'report.html'}" in res.output and ids[0] in res.output


def test_cli_bad_folder_is_one_line_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from innerworks.cli import main

    monkeypatch.setattr(sys, "argv", ["innerworks", "report", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no repro.json or results.json" in lines[0] and "Traceback" not in err
