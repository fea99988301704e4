"""Periodic orbits (fixed points of ``F^k``) and the attractor audit.

A network can store memories in cycles instead of fixed points: a flip-flop RNN trained to hold bits may flip the
sign of its state every step (a period-2 cycle). A fixed-point search then reports only saddles, and nothing in its
output says so. Two tools close that gap:

- :func:`find_periodic_orbits`: certified roots of ``F^k(h) − h`` for ``k = min_period..max_period`` (same
  Levenberg–Marquardt engine as the fixed-point finder; Jacobians of ``F^k`` by the chain rule). Points whose true
  period is a proper divisor of k are dropped (they belong to the smaller period), and the k points of each cycle are
  merged into one orbit. Stability comes from the Floquet multipliers: eigenvalues of ``J(h_{k−1})···J(h_0)``.
- :func:`audit_attractors`: relax the end states of real trajectories under x* for many steps, find the period each
  settles into, cluster them into attractors, and check that every one is in the reported fixed points / orbits. A
  missing attractor, or a trajectory that never settles, makes ``complete`` False and emits a clear
  :class:`IncompleteAttractorsWarning`.

>>> import torch, warnings
>>> from innerworks.dynamics.toys import period_two_tanh
>>> from innerworks.dynamics.fixed_points import find_fixed_points
>>> step = period_two_tanh(n_bits=2)                           # h' = -tanh(2h): bits stored as 2-cycles
>>> starts = torch.rand(64, 2, generator=torch.Generator().manual_seed(0)) * 3 - 1.5
>>> fps = find_fixed_points(step, starts)                      # only the unstable origin
>>> with warnings.catch_warnings(record=True):
...     audit = audit_attractors(step, starts, fps)
>>> audit.complete, [a.period for a in audit.missing]
(False, [2, 2])
>>> orbits = find_periodic_orbits(step, starts, max_period=2)
>>> audit_attractors(step, starts, fps, orbits).complete
True
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from innerworks.dynamics import _solver as S
from innerworks.dynamics._prepare import as_states, parse_options, prepare
from innerworks.dynamics.fixed_points import FinderOptions, FixedPoints, _make_starts, _run_solver, outcome_counts
from innerworks.dynamics.linearize import eigsorted, n_unstable_modes
from innerworks.dynamics.step import Step, as_step
from innerworks.errors import InnerworksError
from innerworks.utils.io import atomic_write_bytes, write_json

FORMAT = "innerworks.periodic_orbits"


class IncompleteAttractorsWarning(UserWarning):
    """Relaxed trajectories reach attractors that the reported fixed points / orbits do not contain."""


# ------------------------------------------------------------------------------------------------ F^k and its Jacobian
def power_map(step: Step, k: int) -> S.MapFn:
    """``(x, h) ↦ F^k(h)`` (k steps under the constant input x)."""
    def fk(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for _ in range(k):
            h = step(x, h)
        return h
    return fk


def power_jacobian(step: Step, k: int) -> S.MapFn:
    """``(x, h) ↦ d F^k / dh = J(h_{k−1}) ··· J(h_0)`` by the chain rule (uses the step's own Jacobian)."""
    def jk(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            jac = step.jacobian(x, h)
            for _ in range(k - 1):
                h = step(x, h)
                jac = torch.bmm(step.jacobian(x, h), jac)
        return jac
    return jk


# ------------------------------------------------------------------------------------------------ container
@dataclass
class PeriodicOrbits:
    """Periodic orbits (cycles) of period >= 2, each stored as its ``p`` consecutive states.

    Attributes:
        points: ``[P, S]``, the states of all orbits, orbit by orbit, in the order the map visits them.
        orbit_index: ``[P]``, which orbit each row belongs to.
        periods: ``[M]``; residuals: ``[M]``, the largest ``‖F^p(h) − h‖`` over the orbit's states.
        converged: ``[M]`` bool (every state certified below ``meta["tol"]``).
        multipliers: complex ``[M, S]``, Floquet multipliers sorted by ``|μ|`` (eigenvalues of the map ``F^p``).
        multiplicity: ``[M]``, how many certified starts fell on each orbit.
        inputs: the constant input x*.
        meta: options, per-period outcome counts and notes.
    """

    points: torch.Tensor
    orbit_index: torch.Tensor
    periods: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor
    multipliers: torch.Tensor
    multiplicity: torch.Tensor
    inputs: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.periods.shape[0])

    def orbit(self, i: int) -> torch.Tensor:
        """The states ``[p, S]`` of orbit ``i``."""
        return self.points[self.orbit_index == i]

    @property
    def n_unstable(self) -> torch.Tensor:
        """Floquet multipliers with ``|μ| > 1 + unstable_margin``, per orbit."""
        return n_unstable_modes(self.multipliers, float(self.meta.get("unstable_margin", 1e-7)))

    @property
    def stable(self) -> torch.Tensor:
        return self.n_unstable == 0

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [f"{len(self)} periodic orbits (periods {self.meta.get('min_period')}..{self.meta.get('max_period')}, "
                 f"residual < {self.meta.get('tol', float('nan')):g}) from {self.meta.get('n_starts', '?')} starts"]
        for p in sorted(set(self.periods.tolist())):
            sel = self.periods == p
            lines.append(f"  period {p}: {int(sel.sum())} orbits, {int((self.stable & sel).sum())} stable")
        lines.extend(f"  note: {n}" for n in self.meta.get("notes", []))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"PeriodicOrbits(n={len(self)}, periods={sorted(set(self.periods.tolist()))})"

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.safetensors`` + ``<stem>.json`` (like :meth:`FixedPoints.save`)."""
        from safetensors.torch import save as st_save

        p = Path(path)
        stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
        t = {"points": self.points, "orbit_index": self.orbit_index, "periods": self.periods,
             "residuals": self.residuals, "converged": self.converged.to(torch.uint8),
             "multipliers_real": self.multipliers.real, "multipliers_imag": self.multipliers.imag,
             "multiplicity": self.multiplicity, "inputs": self.inputs}
        atomic_write_bytes(stem.with_suffix(".safetensors"),
                           st_save({k: v.detach().cpu().contiguous().clone() for k, v in t.items()}))
        write_json(stem.with_suffix(".json"), {"format": FORMAT, "version": 1, "meta": self.meta})
        return stem.with_suffix(".safetensors"), stem.with_suffix(".json")

    @classmethod
    def load(cls, path: str | Path) -> PeriodicOrbits:
        """Read what :meth:`save` wrote."""
        from safetensors.torch import load as st_load

        p = Path(path)
        stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
        tp, mp = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        for f in (tp, mp):
            if not f.is_file():
                raise InnerworksError(f"{f}: file not found (orbits are saved as .safetensors + .json)")
        header = json.loads(mp.read_text(encoding="utf-8"))
        if header.get("format") != FORMAT:
            raise InnerworksError(f"{mp}: field 'format': expected {FORMAT!r}")
        t = st_load(tp.read_bytes())
        try:
            return cls(t["points"], t["orbit_index"], t["periods"], t["residuals"], t["converged"].bool(),
                       torch.complex(t["multipliers_real"], t["multipliers_imag"]), t["multiplicity"], t["inputs"],
                       dict(header.get("meta", {})))
        except KeyError as exc:
            raise InnerworksError(f"{tp}: missing tensor {exc}") from None


# ------------------------------------------------------------------------------------------------ search
def _divisors(k: int) -> list[int]:
    return [d for d in range(1, k) if k % d == 0]


def find_periodic_orbits(step: Any, initial_states: Any, inputs: Any = None, *, max_period: int = 2,
                         min_period: int = 2, generator: torch.Generator | None = None,
                         **options: Any) -> PeriodicOrbits:
    """Find certified periodic orbits of ``h ↦ step(x*, h)`` with periods ``min_period..max_period`` (>= 2).

    Args:
        step, initial_states, inputs, generator: as in :func:`~innerworks.dynamics.fixed_points.find_fixed_points`.
        max_period, min_period: the periods k searched (each a root search on ``F^k(h) − h``).
        **options: :class:`~innerworks.dynamics.fixed_points.FinderOptions` (``tol``, ``unique_tol``, ...).
            ``unique_tol`` also decides the true period: a root of ``F^k − I`` with ``‖F^d(h) − h‖ <= unique_tol``
            for a proper divisor d of k has period d and is dropped.

    >>> import torch
    >>> from innerworks.dynamics.toys import period_two_tanh
    >>> orbits = find_periodic_orbits(period_two_tanh(1), torch.linspace(-2, 2, 9).unsqueeze(1))
    >>> len(orbits), orbits.periods.tolist(), bool(orbits.stable[0])
    (1, [2], True)
    """
    if min_period < 2 or max_period < min_period:
        raise InnerworksError(f"periods must satisfy 2 <= min_period <= max_period, got {min_period}..{max_period} "
                              "(period 1 = fixed points: use find_fixed_points)")
    opts: FinderOptions = parse_options(FinderOptions, options)
    t0 = time.perf_counter()
    step, h, x, x_star = prepare(step, initial_states, inputs, getattr(torch, opts.dtype), opts.tol)
    gen = generator if generator is not None else torch.Generator().manual_seed(opts.seed)
    h, x = _make_starts(h, x, opts, gen)
    pts, idx, periods, resid, conv, mults, mult = [], [], [], [], [], [], []
    per_period: dict[str, Any] = {}
    notes: list[str] = []
    n_orbits = 0
    for k in range(min_period, max_period + 1):
        fk, jk = power_map(step, k), power_jacobian(step, k)
        res, x_rows = _run_solver(fk, jk, x, h, opts, f"period-{k} orbits")
        ok = (res.status == S.CONVERGED).nonzero().squeeze(-1)
        cand, xc, rc = res.points[ok], x_rows[ok], res.residuals[ok]
        # drop roots whose true period is a proper divisor of k
        lower = torch.zeros(cand.shape[0], dtype=torch.bool, device=cand.device)
        for d in _divisors(k):
            lower |= (power_map(step, d)(xc, cand) - cand).norm(dim=-1) <= opts.unique_tol
        cand, xc, rc = cand[~lower], xc[~lower], rc[~lower]
        # one orbit per cycle: leader clustering against all k states of each kept orbit
        order = torch.argsort(rc, stable=True)
        remaining = order
        found_k = 0
        while remaining.numel():
            lead = remaining[0]
            orb = [cand[lead:lead + 1]]
            for _ in range(k - 1):
                orb.append(step(xc[lead:lead + 1], orb[-1]))
            orb_t = torch.cat(orb)
            xo = xc[lead:lead + 1].expand(k, -1)
            # certify every state of the orbit (iterating can amplify the leader's residual by |λ|^j)
            pol = S.levenberg_marquardt(fk, jk, xo, orb_t, tol=opts.tol, max_iter=opts.max_iter, damping=opts.damping)
            d = torch.cdist(cand[remaining], orb_t).min(dim=1).values
            close = d <= opts.unique_tol
            ev = eigsorted(jk(xo[:1], pol.points[:1]), vectors=False).eigenvalues[0]
            pts.append(pol.points)
            idx.append(torch.full((k,), n_orbits, dtype=torch.long, device=h.device))
            periods.append(k)
            resid.append(float(pol.residuals.max()))
            conv.append(bool((pol.status == S.CONVERGED).all()))
            mults.append(ev)
            mult.append(int(close.sum()))
            n_orbits += 1
            found_k += 1
            remaining = remaining[~close]
        per_period[str(k)] = {"outcomes": outcome_counts(res), "lower_period": int(lower.sum()), "orbits": found_k}
    s = h.shape[1]
    meta = {"tol": opts.tol, "unique_tol": opts.unique_tol, "unstable_margin": opts.unstable_margin,
            "min_period": min_period, "max_period": max_period, "n_starts": int(h.shape[0]),
            "per_period": per_period, "options": opts.model_dump(), "notes": notes, "step": step.name,
            "time_s": time.perf_counter() - t0}
    if n_orbits == 0:
        notes.append(f"no orbit of period {min_period}..{max_period} was certified from {h.shape[0]} starts")
    return PeriodicOrbits(
        points=torch.cat(pts) if pts else torch.zeros(0, s, dtype=h.dtype, device=h.device),
        orbit_index=torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long, device=h.device),
        periods=torch.tensor(periods, dtype=torch.long, device=h.device),
        residuals=torch.tensor(resid, dtype=h.dtype, device=h.device),
        converged=torch.tensor(conv, dtype=torch.bool, device=h.device),
        multipliers=torch.stack(mults) if mults else torch.zeros(0, s, dtype=torch.complex128, device=h.device),
        multiplicity=torch.tensor(mult, dtype=torch.long, device=h.device),
        inputs=x_star, meta=meta)


# ------------------------------------------------------------------------------------------------ audit
@dataclass
class Attractor:
    """One attractor reached by relaxed trajectories.

    Attributes:
        period: 1 for a fixed point, p for a p-cycle.
        points: ``[p, S]`` the settled states (one per phase).
        n_trajectories: how many trajectories settled into it.
        found: whether a reported fixed point (p = 1) or orbit of the same period lies within ``match_tol``.
        distance: distance to the nearest reported point/orbit state of that period (inf if none).
        match: e.g. ``"fixed point 3"`` or ``"orbit 1"``; None when not found.
        match_stable: whether the matched point/orbit is reported stable (None when not found).
    """

    period: int
    points: torch.Tensor
    n_trajectories: int
    found: bool
    distance: float
    match: str | None
    match_stable: bool | None

    def describe(self) -> str:
        kind = "fixed point" if self.period == 1 else f"period-{self.period} cycle"
        where = f"found as {self.match}" if self.found else f"MISSING (nearest reported: {self.distance:.3g} away)"
        return f"{kind} reached by {self.n_trajectories} trajectories: {where}"


@dataclass
class AttractorAudit:
    """Whether every attractor that real trajectories settle into is in the reported set.

    Attributes:
        attractors: every attractor found by relaxation (see :class:`Attractor`).
        n_trajectories: trajectories relaxed; n_unsettled: those that did not return within ``settle_tol`` for any
            period up to ``max_period`` after ``max_relax`` steps (slow drift, longer cycles or chaos), or diverged.
        n_relax: the most relaxation steps any trajectory received.
        unsettled_speed: the smallest return distance ``min_p ‖F^p(h) − h‖`` among unsettled ones (0 if none).
        message: the explanation (also the warning text when incomplete).
    """

    attractors: list[Attractor]
    n_trajectories: int
    n_unsettled: int
    unsettled_speed: float
    n_relax: int
    max_period: int
    settle_tol: float
    match_tol: float
    message: str = ""

    @property
    def missing(self) -> list[Attractor]:
        return [a for a in self.attractors if not a.found]

    @property
    def complete(self) -> bool:
        """True when every attractor is reported and every trajectory settled."""
        return not self.missing and self.n_unsettled == 0

    def summary(self) -> str:
        head = (f"attractor audit: {len(self.attractors)} attractors from {self.n_trajectories} trajectories "
                f"relaxed {self.n_relax} steps; {'COMPLETE' if self.complete else 'INCOMPLETE'}")
        return "\n".join([head] + [f"  {a.describe()}" for a in self.attractors] + ([f"  {self.message}"]
                                                                                    if self.message else []))


def _settle(step: Step, x: torch.Tensor, h: torch.Tensor, max_period: int,
            settle_tol: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smallest p <= max_period with ‖F^p(h) − h‖ < settle_tol (0 if none), the iterates and return distances."""
    its = [h]
    with torch.no_grad():
        for _ in range(max_period):
            its.append(step(x, its[-1]))
    traj = torch.stack(its, dim=1)  # [N, P+1, S]
    dist = (traj[:, 1:] - traj[:, :1]).norm(dim=-1)  # [N, P]
    dist = torch.where(torch.isfinite(dist), dist, torch.full_like(dist, float("inf")))
    ok = dist < settle_tol
    period = torch.where(ok.any(dim=1), ok.float().argmax(dim=1) + 1, torch.zeros(h.shape[0], dtype=torch.long))
    return period, traj, dist


def audit_attractors(step: Any, states: Any, fixed_points: FixedPoints | None = None,
                     orbits: PeriodicOrbits | None = None, inputs: Any = None, *, n_relax: int = 500,
                     max_relax: int = 20000, max_period: int = 8, settle_tol: float = 1e-6, match_tol: float = 1e-3,
                     warn: bool = True) -> AttractorAudit:
    """Relax trajectory end states under x* and check that each attractor they reach was reported.

    Each trajectory is relaxed in blocks of ``n_relax`` steps; after each block, the ones that have settled (they
    return within ``settle_tol`` after p <= ``max_period`` steps) stop, the others continue, up to ``max_relax``
    steps (slow modes with |λ| ≈ 0.999 need thousands of steps).

    Args:
        step: the map (anything :func:`~innerworks.dynamics.step.as_step` takes).
        states: end states of real trajectories ``[N, S]`` (``[B, T, S]``: the last step of each is used).
        fixed_points: the reported fixed points (only certified ones count); orbits: reported periodic orbits.
        inputs: x*; default: ``fixed_points.inputs`` when given, else zeros.
        n_relax: relaxation block (and minimum) in steps; max_relax: the most steps any trajectory gets.
        max_period: longest cycle recognised; settle_tol: return distance that counts as settled;
        match_tol: distance within which a reported point/orbit state matches an attractor.
        warn: emit an :class:`IncompleteAttractorsWarning` when the audit is incomplete.
    """
    step = as_step(step)
    t = torch.as_tensor(states)
    if t.dim() == 3:
        t = t[:, -1]
    h = step.cast(as_states(t, "states"))
    if step.state_size is not None and h.shape[1] != step.state_size:
        raise InnerworksError(f"states have {h.shape[1]} units, the step's state size is {step.state_size}")
    if n_relax < 1 or max_relax < n_relax or max_period < 1:
        raise InnerworksError(f"need 1 <= n_relax <= max_relax and max_period >= 1, got n_relax={n_relax}, "
                              f"max_relax={max_relax}, max_period={max_period}")
    if inputs is None and fixed_points is not None and fixed_points.inputs.dim() == 1:
        inputs = fixed_points.inputs
    if inputs is None:
        x = step.zero_inputs(h.shape[0])
    else:
        xs = step.cast(torch.as_tensor(inputs))
        if xs.dim() != 1:
            raise InnerworksError(f"inputs (x*) must be one constant input [I], got {tuple(xs.shape)}")
        x = xs.unsqueeze(0).expand(h.shape[0], -1)
    n = h.shape[0]
    period = torch.zeros(n, dtype=torch.long, device=h.device)
    traj = torch.zeros(n, max_period + 1, h.shape[1], dtype=h.dtype, device=h.device)
    dist = torch.full((n, max_period), float("inf"), dtype=h.dtype, device=h.device)
    active = torch.arange(n, device=h.device)
    done = 0
    while active.numel() and done < max_relax:
        block = min(n_relax, max_relax - done)
        h[active] = step.iterate(x[active], h[active], block)
        done += block
        p, tr, di = _settle(step, x[active], h[active], max_period, settle_tol)
        period[active], traj[active], dist[active] = p, tr, di
        active = active[p == 0]

    attractors: list[Attractor] = []
    settled = (period > 0).nonzero().squeeze(-1)
    remaining = settled
    while remaining.numel():
        lead = int(remaining[0])
        p = int(period[lead])
        orb = traj[lead, :p]
        d = torch.cdist(traj[remaining, 0], orb).min(dim=1).values
        close = (d <= match_tol) & (period[remaining] == p)
        attractors.append(_match(orb, p, int(close.sum()), fixed_points, orbits, match_tol))
        remaining = remaining[~close]
    unsettled = period == 0
    n_uns = int(unsettled.sum())
    speed = float(dist[unsettled].min(dim=1).values.min()) if n_uns else 0.0
    audit = AttractorAudit(attractors, n, n_uns, speed, done, max_period, settle_tol, match_tol)
    audit.message = _message(audit, orbits)
    if warn and not audit.complete:
        warnings.warn(audit.message, IncompleteAttractorsWarning, stacklevel=2)
    return audit


def _match(orb: torch.Tensor, p: int, n: int, fps: FixedPoints | None, orbits: PeriodicOrbits | None,
           match_tol: float) -> Attractor:
    best, match, stable = float("inf"), None, None
    if p == 1 and fps is not None and len(fps):
        ok = fps.converged.to(orb.device)
        cand = fps.points.to(orb)[ok]
        if cand.shape[0]:
            d = (cand - orb[0]).norm(dim=-1)
            i = int(d.argmin())
            best = float(d[i])
            j = int(ok.nonzero()[i])
            match, stable = f"fixed point {j}", bool(fps.stable[j])
    if p > 1 and orbits is not None and len(orbits):
        rows = (orbits.periods[orbits.orbit_index] == p) & orbits.converged[orbits.orbit_index]
        if bool(rows.any()):
            cand = orbits.points.to(orb)[rows]
            d = torch.cdist(orb, cand).min(dim=0).values
            i = int(d.argmin())
            best = float(d[i])
            j = int(orbits.orbit_index[rows][i])
            match, stable = f"orbit {j}", bool(orbits.stable[j])
    found = best <= match_tol
    return Attractor(p, orb.detach().clone(), n, found, best, match if found else None, stable if found else None)


def _message(audit: AttractorAudit, orbits: PeriodicOrbits | None) -> str:
    parts = []
    miss = audit.missing
    if miss:
        by_p: dict[int, list[int]] = {}
        for a in miss:
            by_p.setdefault(a.period, []).append(a.n_trajectories)
        desc = "; ".join(f"{len(v)} {'fixed point' if p == 1 else f'period-{p} cycle'}{'s' if len(v) > 1 else ''} "
                         f"({sum(v)} trajectories)" for p, v in sorted(by_p.items()))
        parts.append(f"attractor audit: {len(miss)} of {len(audit.attractors)} attractors reached by relaxed "
                     f"trajectories are NOT in the reported set: {desc}.")
        longest = max(by_p)
        searched = 1 if orbits is None else int(orbits.meta.get("max_period", 1))
        if longest > 1 and longest > searched:
            parts.append(f"The network stores states in cycles: search them with find_periodic_orbits(step, states, "
                         f"max_period={longest}).")
        if 1 in by_p:
            parts.append("Missing fixed points: rerun find_fixed_points from the audit's attractor states "
                         "(audit.missing[i].points) or with more starts.")
    unstable_match = [a for a in audit.attractors if a.found and a.match_stable is False]
    if unstable_match:
        parts.append(f"{len(unstable_match)} attractors match points reported as unstable (check unstable_margin).")
    if audit.n_unsettled:
        parts.append(f"{audit.n_unsettled} of {audit.n_trajectories} trajectories did not settle after "
                     f"{audit.n_relax} steps (no return within {audit.settle_tol:g} for periods 1..{audit.max_period};"
                     f" smallest return distance {audit.unsettled_speed:.2e}): slow manifolds, longer cycles or chaos;"
                     " the audit cannot vouch for them.")
    return " ".join(parts)


__all__ = ["Attractor", "AttractorAudit", "IncompleteAttractorsWarning", "PeriodicOrbits", "audit_attractors",
           "find_periodic_orbits", "power_jacobian", "power_map"]
