"""The training loop (one), optimizers, schedules, clipping, early stopping, divergence; packed training."""

from claimbench.train.loop import train_trial
from claimbench.train.optim import OPTIMIZERS, SCHEDULES, Schedule, make_optimizer
from claimbench.train.packed import train_jointly, train_pack

__all__ = ["OPTIMIZERS", "SCHEDULES", "Schedule", "make_optimizer", "train_jointly", "train_pack", "train_trial"]
