"""Per-token training cost of every recurrent cell's ``scan``, against the fused ``nn.GRU`` of the same size.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/cells.py [--hidden 64,256] [--lengths 100,1000] [--json PATH]``.
What is timed: one training step's forward and backward, on one thread, either through the cell directly
(default), ``cell.scan(xs).sum()`` with ``xs [B, T, input]`` requiring a gradient (as an embedding output does),
or with ``--through classifier`` through an :class:`~innerworks.models.classifier.RNNClassifier` (embedding of
``input`` dims, vocabulary 1000, 5 classes, cross-entropy at each document's last token, lengths T/2..T). ``gru`` is
:class:`~innerworks.models.cells.GRUCell`, whose scan is the fused ``nn.GRU`` kernel: the baseline. The cells are
timed interleaved (one step of each in turn, best of ``--repeats``), so every ratio compares figures taken under
the same machine load. Target: ``ugrnn`` and ``gru_renn`` at most 2x the GRU's per-token cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from innerworks.models.cells import CELL_TYPES, RecurrentCell, make_cell
from innerworks.models.classifier import RNNClassifier
from innerworks.utils.provenance import cpu_name

TARGET = 2.0
TARGET_CELLS = ("ugrnn", "gru_renn")


def train_step(cell: RecurrentCell, xs: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``cell.scan(xs).sum()`` (gradients into xs, h0 and every weight)."""
    def run() -> None:
        cell.zero_grad(set_to_none=True)
        xs.grad = None
        cell.scan(xs).sum().backward()
    return run


def classifier_step(kind: str, hidden: int, batch: int, length: int, input_size: int) -> Callable[[], None]:
    """One forward + backward of an :class:`RNNClassifier`'s last-token cross-entropy on random documents."""
    gen = torch.Generator().manual_seed(1)
    model = RNNClassifier(vocab_size=1000, num_classes=5, cell=kind, hidden_size=hidden, embed_dim=input_size)
    tokens = torch.randint(1, 1000, (batch, length), generator=gen)
    lengths = torch.randint(max(1, length // 2), length + 1, (batch,), generator=gen)
    labels = torch.randint(0, 5, (batch,), generator=gen)

    def run() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model.last_logits(model(tokens), lengths), labels).backward()
    return run


def interleaved_best(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Best wall time of each function over ``repeats`` rounds; each round runs every function once, in turn."""
    for fn in fns.values():  # warm-up: allocator, first-call dispatch
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def bench_config(kinds: list[str], hidden: int, length: int, batch: int, input_size: int, repeats: int,
                 through: str = "cell") -> dict[str, float]:
    """Seconds per token (one training step over ``batch * length`` tokens) of each cell kind."""
    torch.manual_seed(0)
    if through == "classifier":
        fns = {k: classifier_step(k, hidden, batch, length, input_size) for k in kinds}
    else:
        xs = torch.randn(batch, length, input_size, requires_grad=True)
        fns = {k: train_step(make_cell(k, input_size, hidden), xs) for k in kinds}
    best = interleaved_best(fns, repeats)
    return {k: t / (batch * length) for k, t in best.items()}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=_ints, default=[64, 256], help="hidden sizes, comma-separated")
    parser.add_argument("--lengths", type=_ints, default=[100, 1000], help="sequence lengths T, comma-separated")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--through", choices=("cell", "classifier"), default="cell",
                        help="time cell.scan directly or a whole RNNClassifier")
    parser.add_argument("--kinds", default=",".join(CELL_TYPES), help="cells to time (gru is always included)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    kinds = ["gru"] + [k for k in args.kinds.split(",") if k and k != "gru"]
    load0 = os.getloadavg()
    print(f"machine: {platform.platform()} | {cpu_name()} | torch {torch.__version__} | "
          f"threads {torch.get_num_threads()} | load {'/'.join(f'{x:.2f}' for x in load0)}")
    what = "cell.scan(xs).sum()" if args.through == "cell" else "RNNClassifier last-token cross-entropy"
    print(f"forward+backward of {what}, batch {args.batch}, input {args.input_size}, "
          f"best of {args.repeats} interleaved; us/token and ratio to the fused nn.GRU (gru) in the same run")
    print(f"{'hidden':>6} {'T':>5} " + " ".join(f"{k:>16}" for k in kinds))
    rows = []
    for hidden in args.hidden:
        for length in args.lengths:
            per_token = bench_config(kinds, hidden, length, args.batch, args.input_size, args.repeats,
                                     args.through)
            base = per_token["gru"]
            cells = " ".join(f"{per_token[k] * 1e6:8.2f} ({per_token[k] / base:4.2f}x)" for k in kinds)
            print(f"{hidden:>6} {length:>5} {cells}")
            rows.append({"hidden": hidden, "length": length, "seconds_per_token": per_token,
                         "ratio_to_gru": {k: per_token[k] / base for k in kinds}})
    load1 = os.getloadavg()
    worst = max((r["ratio_to_gru"][k] for r in rows for k in TARGET_CELLS if k in kinds), default=float("nan"))
    print(f"worst ugrnn/gru_renn ratio {worst:.2f}x | target <= {TARGET:.0f}x: "
          f"{'met' if worst <= TARGET else 'MISSED'} | load after {'/'.join(f'{x:.2f}' for x in load1)}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": cpu_name(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "through": args.through, "batch": args.batch, "input_size": args.input_size, "repeats": args.repeats,
            "load_average": load0, "load_average_after": load1, "rows": rows}, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
