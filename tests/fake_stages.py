"""Stand-in reproduction stages for testing the `repro all` orchestration (imported by worker processes)."""

from __future__ import annotations

from pathlib import Path

from innerworks.report.claims import Claim, ReproResult, write_results


def good(out: Path, quick: bool, device: str, seed: int, progress: bool) -> ReproResult:
    result = ReproResult("good", [Claim("g1", "two plus two", "== 4", 2 + 2, 2 + 2 == 4)])
    write_results(out, result)
    return result


def failing(out: Path, quick: bool, device: str, seed: int, progress: bool) -> ReproResult:
    result = ReproResult("failing", [Claim("f1", "seed is odd", "odd", seed, seed % 2 == 1)])
    write_results(out, result)
    return result


def broken(out: Path, quick: bool, device: str, seed: int, progress: bool) -> ReproResult:
    raise RuntimeError("stage exploded")
