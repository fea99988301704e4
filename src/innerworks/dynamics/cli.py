"""Command line of the dynamics lab (thin: parse arguments, call the library, print).

- ``innerworks analyze dynamics RUN_DIR --out DIR``: fixed points, manifold dimension, linearisation, readout
  geometry and word-count prediction of a trained ``classification`` or ``flipflop`` run, written to
  ``DIR/analysis.json`` plus figures (:func:`innerworks.dynamics.analyze.analyze_run`).
"""

from __future__ import annotations

from pathlib import Path

import typer

MAX_COUNT = 1_000_000  # --n-docs, --n-starts: catches typos (the papers' searches use about 10,000 starts)


def register(app: typer.Typer, analyze: typer.Typer) -> None:
    """Add ``analyze dynamics``."""

    @analyze.command("dynamics")
    def analyze_cmd(
        run_dir: Path = typer.Argument(..., help="a run directory written by `innerworks train` "
                                                 "(task: classification or flipflop)"),
        out: Path = typer.Option(..., "--out", help="output folder for analysis.json, fixed points and figures/"),
        n_docs: int = typer.Option(500, "--n-docs", help="test documents (or trials) whose states seed the search"),
        n_starts: int = typer.Option(1024, "--n-starts", help="fixed-point starts (seeded subset of the states)"),
        seed: int = typer.Option(0, "--seed", help="seeds the start subset and subsamples"),
        no_figures: bool = typer.Option(False, "--no-figures", help="skip the figures"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
    ) -> None:
        """Fixed points, manifold dimension, eigenvalues, readout geometry (and word counts) of a trained run."""
        from innerworks.dynamics.analyze import AnalysisSettings, analyze_run
        from innerworks.utils.io import check_output_dir
        from innerworks.utils.options import check_int, check_seed, settings_from_options

        check_output_dir(out, "--out")
        check_int(n_docs, "--n-docs", lo=1, hi=MAX_COUNT)
        check_int(n_starts, "--n-starts", lo=1, hi=MAX_COUNT)
        check_seed(seed)
        settings = settings_from_options(AnalysisSettings, {"n_docs": n_docs, "n_starts": n_starts, "seed": seed,
                                                            "figures": not no_figures}, {"figures": "--no-figures"})
        r = analyze_run(run_dir, out, settings=settings, progress=not quiet)
        s = r.summary
        fp = s["fixed_points"]
        typer.echo(f"{r.name} ({r.task}, {s['cell']}-{s['hidden_size']}): {fp['n']} exact fixed points "
                   f"(unstable modes {fp['unstable_histogram']}), all certified: {fp['all_certified']}")
        if r.task == "classification":
            m = s["manifold"]
            typer.echo(f"  manifold: {m['n_points']} approximate fixed points (of {m.get('n_starts', '?')} starts); "
                       f"participation ratio {m['participation_ratio']}, readout dimension {m['readout_dimension']}, "
                       f"{m['dimension_95']} PCs at 95%; word-count PR {s['wordcount'].get('participation_ratio')}; "
                       f"test accuracy {s.get('test_accuracy')}")
            if s.get("readout"):
                ro = s["readout"]
                typer.echo(f"  readout angles {ro['pair_angles']} (simplex {ro['simplex_angle']:.1f})")
        else:
            typer.echo(f"  lattice of {3 ** s['n_bits']} points: {s['lattice']['matches']}; audit complete: "
                       f"{s['audit']['complete']}")
        typer.echo(f"wrote {r.json_path} and {len(r.figures)} figure(s) in {Path(out) / 'figures'}")

