"""Frames from records, isolation of a scientific effect, statistics over seeds."""

from claimbench.analysis.frames import curve_frame, trial_frame
from claimbench.analysis.isolation import isolate, strata_of
from claimbench.analysis.stats import seed_mean_ci

__all__ = ["curve_frame", "isolate", "seed_mean_ci", "strata_of", "trial_frame"]
