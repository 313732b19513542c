"""``claimbench calibrate``: the error rates of every claim kind's real decision rule, measured by simulation.

For each kind a *scenario* simulates trial frames whose truth is known — the shape of the shipped
suites: scientific levels (or arms), learning rates tuned per level (the trial best on validation
is reported on test), one shift per seed shared by every level (what pairing removes), independent
trial noise — and runs the kind's own ``evaluate`` on them, exactly as a suite would. Per kind, seed
count and truth it counts how often the verdict is *supported* and how often *refuted*:

- the **null** rows put the truth exactly on a decision boundary (no effect; or an effect exactly at
  the claim's margin or band edge): there a supported (or refuted) verdict is a false decision, and
  a calibrated rule errs at most ``ALPHA`` = 2.5% of the time per side;
- the **effect** rows put the truth 1 or 2 SD beyond the supported boundary (or the refuted one), where
  SD is the standard deviation of one seed's difference of the cell quantity between two levels with
  the same truth (measured by a pilot simulation of the same model): power.

The argbest and slope kinds (best_level_in_range, critical_batch, power_law_slope, lr_surge) also run as a real
suite shapes them (the **fixed-grid** scenarios, ``Scenario.grid == "fixed"``): ONE tuned grid for every seed of
an experiment, its offset against the optimum drawn once per experiment (not per seed, which would make the
grid's rounding look like seed noise), and the metric rounded as the store records it (val_acc to 1/800 and
test_acc to 1/1000, the built-in mnist1d's validation and test splits; steps to target up to the suite's next
evaluation). ``claimbench calibrate --grid fixed`` runs only those.

Every rate comes with its Monte Carlo standard error sqrt(p (1 - p) / reps). A rule passes at a seed
count when each null rate is at most ALPHA + 2 SE. ``claimbench calibrate`` prints the table;
``reports/calibration.md`` holds the full one.

The modules: ``trials`` (the simulated trials and the pilot SDs), ``scenarios`` (one or more per kind:
``scenarios.scenarios()``),
``simulator`` (``simulate``, ``run``) and ``table`` (``Row``, the printed and Markdown table).
"""

from __future__ import annotations

from claimbench.calibrate.scenarios import Scenario, Truth, scenario_kinds, stress_scenarios
from claimbench.calibrate.simulator import DESIGNS, GRIDS, adaptive_verdict, run, simulate
from claimbench.calibrate.table import Row, format_row, markdown, power_summary

__all__ = ["DESIGNS", "GRIDS", "adaptive_verdict", "scenario_kinds", "Row", "Scenario", "Truth", "format_row", "markdown", "power_summary", "run",
           "simulate", "stress_scenarios"]
