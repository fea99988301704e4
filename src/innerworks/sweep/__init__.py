"""Sweeps: one base recipe, a grid of recipe fields, every combination trained (locally or on Ray) and recorded.

``innerworks sweep SWEEP.yaml --out DIR`` (see ``docs/sweeps.md``) calls :func:`run_sweep`, which returns a
:class:`SweepResult`. The sweep package sits on top of the library (like the CLI): training imports nothing from it,
and it imports a lab (dynamics, attention) only when a sweep asks for its analysis. Ray is an optional extra,
imported only by ``Backend.RAY``.

>>> from innerworks.sweep import Backend, SweepSpec, plan_runs
>>> spec = SweepSpec.model_validate({"base": "quick", "grid": {"seed": [0, 1], "model.hidden_size": [32, 64]}})
>>> len(plan_runs(spec)), Backend.LOCAL.value
(4, 'local')
"""

from innerworks.sweep.record import RunRecord, SweepResult
from innerworks.sweep.runner import Backend, run_sweep
from innerworks.sweep.spec import SweepRun, SweepSpec, load_sweep, plan_runs

__all__ = ["Backend", "RunRecord", "SweepResult", "SweepRun", "SweepSpec", "load_sweep", "plan_runs", "run_sweep"]
