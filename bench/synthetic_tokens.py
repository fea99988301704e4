"""Throughput of the synthetic-task generator on ONE CPU core, against a naive pure-Python generator.

Run: ``.venv/bin/python bench/synthetic_tokens.py [--docs 100000]``. Target: >= 5M tokens/s for 3-class
categorical documents of length 50 (balanced). The baseline is a per-document Python generator of the same task
(the authors' approach), timed in the same run on fewer documents; the ratio is the speed-up.
"""

from __future__ import annotations

import argparse
import platform
import random
import time

import torch

from innerworks.data.synthetic import SyntheticConfig, generate
from innerworks.utils.provenance import cpu_name

TARGET = 5e6


def naive_generate(n: int, num_classes: int, length: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Per-document loop: draw words, score, argmax (ties -> lowest), keep while the class quota allows."""
    rng = random.Random(seed)
    words = list(range(1, num_classes + 2))  # kinda0..kinda{N-1}, the
    quota = [n // num_classes + (1 if c < n % num_classes else 0) for c in range(num_classes)]
    docs, labels = [], []
    while len(docs) < n:
        doc = [rng.choice(words) for _ in range(length)]
        score = [0] * num_classes
        for w in doc:
            if w <= num_classes:
                score[w - 1] += 1
        label = score.index(max(score))
        if quota[label] > 0:
            quota[label] -= 1
            docs.append(doc)
            labels.append(label)
    return docs, labels


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--baseline-docs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.platform()} | {cpu_name()} | python {platform.python_version()} | "
          f"torch {torch.__version__} | threads {torch.get_num_threads()}")

    cfg = SyntheticConfig(task="categorical", num_classes=3, length=50)
    tokens = args.docs * cfg.length
    fast = best_time(lambda: generate(cfg, args.docs, torch.Generator().manual_seed(0)), args.repeats)
    fast_rate = tokens / fast
    slow = best_time(lambda: naive_generate(args.baseline_docs, 3, 50, seed=0), 1)
    slow_rate = args.baseline_docs * 50 / slow
    print(f"vectorised generate(): 3-class categorical, L=50, {args.docs:,} balanced docs: {fast:.3f} s, "
          f"{fast_rate / 1e6:.1f}M tokens/s (best of {args.repeats})")
    print(f"naive Python baseline: {args.baseline_docs:,} docs: {slow:.3f} s, {slow_rate / 1e6:.2f}M tokens/s")
    print(f"speed-up: {fast_rate / slow_rate:.0f}x | target >= {TARGET / 1e6:.0f}M tokens/s: "
          f"{'met' if fast_rate >= TARGET else 'MISSED'}")

    # the other generators, for reference (same core, same settings otherwise)
    variants = {
        "categorical 3, context words": SyntheticConfig(num_classes=3, length=50, context_words=True),
        "categorical 3, uniform score": SyntheticConfig(num_classes=3, length=50, uniform_score=True),
        "categorical 4, correlated ring": SyntheticConfig(num_classes=4, length=50,
                                                          correlations={"01": .7, "12": .7, "23": .7, "30": .7}),
        "multi-label 3": SyntheticConfig(num_classes=3, length=50, multilabel=True),
        "ordered 5, awesome/awful + context, L=48": SyntheticConfig(task="ordered", num_classes=5, length=48,
                                                                    extreme_words=True, context_words=True),
        "ordered 5, uniform score, awesome/awful, L=30": SyntheticConfig(task="ordered", num_classes=5, length=30,
                                                                         uniform_score=True, extreme_words=True),
        "ordered 3 (rare Good/Bad), L=50": SyntheticConfig(task="ordered", num_classes=3, length=50),
    }
    n = args.docs // 4
    for name, vcfg in variants.items():
        t = best_time(lambda vcfg=vcfg: generate(vcfg, n, torch.Generator().manual_seed(0)), 1)
        print(f"  {name:<48} {n:,} docs: {t:.3f} s, {n * vcfg.length / t / 1e6:6.1f}M tokens/s")


if __name__ == "__main__":
    main()
