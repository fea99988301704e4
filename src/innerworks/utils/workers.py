"""Run named jobs side by side in spawned worker processes, with one rich status line per job.

Shared by ``repro all`` (one stage per worker) and :func:`innerworks.train.parallel.train_many` (one run per
worker). Each job's function must be importable (spawn) and should not raise: it returns a record with a
``status`` (``"ok"`` or not) and an ``error`` when it failed, which is what the status line shows.

>>> run_in_workers({}, max_workers=2, progress=False)
{}
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def _record(result: Any) -> dict[str, Any]:
    return result[0] if isinstance(result, tuple) else result


def run_in_workers(jobs: Mapping[str, tuple[Callable[..., Any], tuple[Any, ...]]], max_workers: int,
                   label: str = "", running: Callable[[str], str] = lambda name: "running",
                   progress: bool = True, console: Console | None = None) -> dict[str, Any]:
    """``{name: fn(*args)}`` for ``jobs = {name: (fn, args)}``, at most ``max_workers`` at once, in submission order.

    Args:
        jobs: name -> (function, arguments); started in this order.
        max_workers: processes at once.
        label: prefix of each status line (``"train"`` gives ``train NAME``).
        running: the status text of a running job, from its name.
        progress: draw the status lines.
        console: where they go (default stderr).

    A job's result (or its first element, for a tuple) is a record whose ``status`` decides the final line: ``done``,
    with ``wall_time_s`` when the record has it, or ``failed:`` with its ``error``.
    """
    console = console or Console(stderr=True)
    results: dict[str, Any] = {}
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=not progress) as bar, ProcessPoolExecutor(
            max_workers=max_workers, mp_context=mp.get_context("spawn")) as pool:
        rows = {n: bar.add_task(f"{label} {n}".strip(), total=1, status="queued") for n in jobs}
        futures = {pool.submit(fn, *args): n for n, (fn, args) in jobs.items()}
        pending = set(futures)
        while pending:
            for fut in pending:
                if fut.running():
                    bar.update(rows[futures[fut]], status=running(futures[fut]))
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = futures[fut]
                results[name] = fut.result()
                rec = _record(results[name])
                if rec.get("status") == "ok":
                    took = f" in {rec['wall_time_s']:.0f} s" if "wall_time_s" in rec else ""
                    status = f"[green]done[/]{took}"
                else:
                    status = f"[red]failed:[/] {rec.get('error')}"
                bar.update(rows[name], completed=1, status=status)
    return {n: results[n] for n in jobs}


__all__ = ["run_in_workers"]
