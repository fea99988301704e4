"""Fuzz the whole command line: 10,000+ random argument lists across every command, none may print a traceback.

Runs the harness of ``tests/test_cli_fuzz.py`` (same argument strategies, same stand-ins for the heavy work, same
checks) with more examples, and prints the number of examples, the tracebacks and other problems found (goal 0),
the exit-code histogram per command, the wall time, the machine and its load.
Usage: ``.venv/bin/python bench/fuzz_cli.py [--examples 10000] [--show 5]``.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given

REPO = Path(__file__).resolve().parents[1]


def _harness():  # noqa: ANN202 - the test module, loaded from its path
    spec = importlib.util.spec_from_file_location("test_cli_fuzz", REPO / "tests" / "test_cli_fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["test_cli_fuzz"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=10_000, help="examples in total, split across commands")
    parser.add_argument("--show", type=int, default=5, help="problem examples to print")
    args = parser.parse_args()
    h = _harness()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="innerworks-fuzz-"))
    files = h.make_files(root / "files")
    setup_s = time.perf_counter() - t0
    targets = h.targets()
    per = math.ceil(args.examples / len(targets))
    codes: dict[str, collections.Counter] = {}
    bad: list[tuple[list[str], list[str]]] = []
    tracebacks = 0
    with pytest.MonkeyPatch.context() as mp:
        h.install_standins(mp)
        mp.chdir(root / "files" / "out")
        for path in targets:
            counter = codes.setdefault(" ".join(path), collections.Counter())

            @h.fuzz_settings(per)
            @given(argv=h.argv_for(path, files))
            def run(argv: list[str]) -> None:
                nonlocal tracebacks
                outcome = h.invoke(argv)
                counter[outcome.code] += 1  # noqa: B023 - run() is called in this iteration
                found = h.problems(outcome)
                if outcome.traceback is not None or "Traceback" in outcome.stderr:
                    tracebacks += 1
                if found:
                    bad.append((argv, found))

            run()
    wall = time.perf_counter() - t0
    total = sum(sum(c.values()) for c in codes.values())
    print(f"examples: {total} ({per} per command x {len(targets)} commands; hypothesis derandomized)")
    print(f"tracebacks: {tracebacks}    other problems: {len(bad) - tracebacks}")
    print(f"{'command':22s} {'n':>6s} " + " ".join(f"{'exit ' + str(c):>7s}" for c in (0, 1, 2)) + "  other")
    for name, c in codes.items():
        other = sum(v for k, v in c.items() if k not in (0, 1, 2))
        print(f"{name:22s} {sum(c.values()):6d} " + " ".join(f"{c[k]:7d}" for k in (0, 1, 2)) + f"  {other:5d}")
    allc = sum(codes.values(), collections.Counter())
    print(f"{'all':22s} {total:6d} " + " ".join(f"{allc[k]:7d}" for k in (0, 1, 2)))
    for argv, found in bad[: args.show]:
        print(f"\nPROBLEM innerworks {argv}:\n" + "\n".join(found))
    print(f"\nwall time: {wall:.1f} s (setup: two tiny runs trained in {setup_s:.1f} s); "
          f"{1000 * (wall - setup_s) / max(total, 1):.1f} ms per example")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
          f", {platform.platform()}")
    print(f"load average (1/5/15 min): before {'/'.join(f'{x:.2f}' for x in load0)}, after "
          f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
