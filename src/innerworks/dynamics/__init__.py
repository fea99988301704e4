"""innerworks.dynamics: fixed points, periodic orbits, linearisation and manifold geometry of recurrent maps.

Typical use (any recurrent map: innerworks cells, ``nn.RNN/GRU/LSTM``, your own module or function)::

    from innerworks.dynamics import find_fixed_points, find_periodic_orbits, audit_attractors, linearize
    fps = find_fixed_points(model.cell, visited_states, inputs=x_star)      # certified, deduplicated, classified
    print(fps.summary()); fps.save("runs/x/fixed_points")
    audit = audit_attractors(model.cell, end_states, fps)                   # warns if attractors are missing
    orbits = find_periodic_orbits(model.cell, visited_states, max_period=4)  # cycles, if the audit asks
    lin = linearize(model.cell, fps.points)                                 # Jacobians, eigenmodes, time constants

Trained runs: ``analyze_run(run_dir, out)`` (``innerworks analyze dynamics``); the ``flipflop`` training task
(:mod:`innerworks.dynamics.task`); ``innerworks repro integration`` (:mod:`innerworks.repro.integration`).

See ``docs/dynamics.md`` for the algorithms and the conventions.
"""

from innerworks.dynamics.analyze import AnalysisSettings, RunAnalysis, analyze_model, analyze_run
from innerworks.dynamics.fixed_points import FinderOptions, FixedPoints, FixedPointWarning, find_fixed_points
from innerworks.dynamics.geometry import (
    PCAResult,
    ReadoutGeometry,
    centroid_distance_ratio,
    correlation_dimension,
    levina_bickel,
    local_participation_ratio,
    participation_ratio,
    pca_dimension,
    readout_angles,
    simplex_angle,
    span_fraction,
)
from innerworks.dynamics.linearize import (
    Eigen,
    Linearization,
    eigsorted,
    input_jacobian,
    input_projections,
    linearize,
    mode_projections,
    readout_alignment,
    recurrent_jacobian,
    time_constants,
)
from innerworks.dynamics.orbits import (
    Attractor,
    AttractorAudit,
    IncompleteAttractorsWarning,
    PeriodicOrbits,
    audit_attractors,
    find_periodic_orbits,
)
from innerworks.dynamics.slow_points import SlowMethod, SlowPoints, aitken_q_tol, find_slow_points, mean_step_size
from innerworks.dynamics.step import Step, as_step
from innerworks.dynamics.task import FlipFlopModel, FlipFlopTask
from innerworks.dynamics.wordcount import (
    DimensionComparison,
    WordCountPrediction,
    class_word_matrix,
    compare_dimensions,
    word_count_prediction,
)

__all__ = [
    "AnalysisSettings",
    "Attractor",
    "AttractorAudit",
    "DimensionComparison",
    "Eigen",
    "FinderOptions",
    "FixedPointWarning",
    "FixedPoints",
    "FlipFlopModel",
    "FlipFlopTask",
    "IncompleteAttractorsWarning",
    "Linearization",
    "PCAResult",
    "PeriodicOrbits",
    "ReadoutGeometry",
    "RunAnalysis",
    "SlowMethod",
    "SlowPoints",
    "Step",
    "WordCountPrediction",
    "aitken_q_tol",
    "analyze_model",
    "analyze_run",
    "as_step",
    "audit_attractors",
    "centroid_distance_ratio",
    "class_word_matrix",
    "compare_dimensions",
    "correlation_dimension",
    "eigsorted",
    "find_fixed_points",
    "find_periodic_orbits",
    "find_slow_points",
    "input_jacobian",
    "input_projections",
    "levina_bickel",
    "linearize",
    "local_participation_ratio",
    "mean_step_size",
    "mode_projections",
    "participation_ratio",
    "pca_dimension",
    "readout_alignment",
    "readout_angles",
    "recurrent_jacobian",
    "simplex_angle",
    "span_fraction",
    "time_constants",
    "word_count_prediction",
]
