"""Generic source-to-target flow matching (torch only).

Time convention: ``t`` in [0, 1], ``t = 0`` is the source (previous-thing embedding or noise),
``t = 1`` the target; models predict the velocity ``dx/dt``; ``t`` has shape ``(B,)``.
"""
from .objective import (DEFAULT_STEPS, OBJECTIVES, SAMPLE_LOSSES, DiffusionObjective, MIPObjective, Objective,
                        ObjectiveConfig, RegressionObjective, SourceToTargetFlow, build_objective, sample_loss)
from .path import StraightPath, expand_time
from .solvers import METHODS, solve
from .time import BetaTime, LogitNormalTime, SourceMixTime, UniformTime, build_time_sampler

__all__ = [
    "DEFAULT_STEPS", "OBJECTIVES", "SAMPLE_LOSSES", "sample_loss", "DiffusionObjective", "MIPObjective", "Objective",
    "ObjectiveConfig", "RegressionObjective", "SourceToTargetFlow", "build_objective",
    "StraightPath", "expand_time", "METHODS", "solve", "BetaTime", "LogitNormalTime",
    "SourceMixTime", "UniformTime", "build_time_sampler",
]
