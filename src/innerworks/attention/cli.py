"""Command line of the attention lab (thin: parse arguments, call the library, print).

- ``innerworks analyze attention RUN_DIR --out DIR``: decompose a trained ``seq2seq`` run's attention into
  ``DIR/analysis.json`` plus figures (:func:`innerworks.attention.analyze.analyze_run`).
"""

from __future__ import annotations

from pathlib import Path

import typer

MAX_BATCH = 65_536  # --batch-size: rows per cached forward pass (a bound that catches typos)
MAX_K = 1_000  # --k: top-k aligned positions (longer than any sequence the labs use)


def register(app: typer.Typer, analyze: typer.Typer) -> None:
    """Add ``analyze attention``."""

    @analyze.command("attention")
    def analyze_cmd(
        run_dir: Path = typer.Argument(..., help="a run directory written by `innerworks train` (task: seq2seq)"),
        out: Path = typer.Option(..., "--out", help="output folder for analysis.json and figures/"),
        split: str = typer.Option("test", "--split", help="train, val or test"),
        n_eval: int | None = typer.Option(None, "--n-eval", help="analyse only the first N rows of the split"),
        batch_size: int = typer.Option(256, "--batch-size", help="rows per cached forward pass"),
        k: int = typer.Option(5, "--k", help="top-k aligned positions for the dot ratios"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
    ) -> None:
        """Decompose a run's hidden states and attention scores (temporal / input / residual; nine terms)."""
        from innerworks.attention.analyze import analyze_run
        from innerworks.utils.io import check_output_dir
        from innerworks.utils.options import check_choice, check_int

        check_output_dir(out, "--out")
        check_choice(split, "--split", ("train", "val", "test"))
        if n_eval is not None:
            check_int(n_eval, "--n-eval", lo=1)
        check_int(batch_size, "--batch-size", lo=1, hi=MAX_BATCH)
        check_int(k, "--k", lo=1, hi=MAX_K)
        r = analyze_run(run_dir, out, split=split, n_eval=n_eval, batch_size=batch_size, k=k, progress=not quiet)
        s = r.summary
        typer.echo(f"{r.name} ({r.task}, {r.arch}): {s['n_sequences']} {split} rows analysed")
        if s["has_attention"]:
            typer.echo(f"  largest dot ratio: {s['largest_dot_ratio_term']} "
                       f"({s['dot_ratios'][s['largest_dot_ratio_term']]:.3f}); input-driven share "
                       f"{s['input_driven_dot_ratio']:.3f}; temporal attention diagonal on "
                       f"{s['temporal_diagonal_fraction']:.0%} of steps")
        else:
            typer.echo(f"  {s['note']}")
        typer.echo(f"wrote {r.json_path} and {len(r.figures)} figure(s) in {Path(out) / 'figures'}")

