"""The training loop (one), optimizers, schedules, clipping, early stopping, divergence."""

from claimbench.train.loop import train_trial
from claimbench.train.optim import OPTIMIZERS, SCHEDULES, Schedule, make_optimizer

__all__ = ["OPTIMIZERS", "SCHEDULES", "Schedule", "make_optimizer", "train_trial"]
