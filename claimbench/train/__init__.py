"""Training: one trial policy (policy.py), losses and metrics (metrics.py), optimizers and schedules
(optim.py), and the engines that move tensors: one model (single.py) or K packed models (packed.py)."""

from claimbench.train.single import train_trial
from claimbench.train.optim import OPTIMIZERS, SCHEDULES, Schedule, make_optimizer
from claimbench.train.packed import train_jointly, train_pack

__all__ = ["OPTIMIZERS", "SCHEDULES", "Schedule", "make_optimizer", "train_jointly", "train_pack", "train_trial"]
