"""Stand-in reproductions for testing the `repro all` orchestration and the shared runner (imported by workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from innerworks.repro.base import Context, LabOutcome, Reproduction
from innerworks.repro.claims import Claim, Source


class NoSettings(BaseModel):
    pass


class _Fake(Reproduction):
    Settings = NoSettings
    title = "a stand-in"
    sources = {"g*": (Source.PAPER, "arithmetic"), "f*": (Source.EXTENSION, "parity")}

    def load_settings(self, path: str | Path | None = None, quick: bool = True) -> Any:
        return NoSettings()


class Good(_Fake):
    name = "good"

    def reproduce(self, settings: Any, ctx: Context) -> LabOutcome:
        return LabOutcome([Claim("g1", "two plus two", "== 4", 2 + 2, 2 + 2 == 4)])


class Failing(_Fake):
    name = "failing"

    def reproduce(self, settings: Any, ctx: Context) -> LabOutcome:
        seed = ctx.options.seed
        return LabOutcome([Claim("f1", "seed is odd", "odd", seed, seed % 2 == 1)])


class Broken(_Fake):
    name = "broken"

    def reproduce(self, settings: Any, ctx: Context) -> LabOutcome:
        raise RuntimeError("stage exploded")


class Unsourced(_Fake):
    name = "unsourced"
    sources = {}

    def reproduce(self, settings: Any, ctx: Context) -> LabOutcome:
        return LabOutcome([Claim("x1", "s", "e", 1, True)])
