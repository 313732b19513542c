"""Running trials: packs of them, on an executor's workers, each record back to the driver as it arrives.

- ``base.py``: the executor contract (``Executor``), written once for every executor: fault injection,
  bounded retries of a lost pack, trial timeouts, one record per trial (``Worker``, ``Ledger``).
- ``registry.py``: the executors by name (``--executor``), found through the entry-point group
  ``claimbench.executors``; the built-ins, ``local.py`` (in this process) and ``ray_executor.py``
  (long-lived actors on an embedded Ray or a cluster), register there like any other.
- ``driver.py``: ``run_trials``, specs into packs through an executor, with the progress bar (``progress.py``).
- ``packs.py``: which trials share a pack, and how wide; ``cost.py``: the cost model of a trial.
- ``timeouts.py``: every trial's wall-clock limit; ``child.py``: a user's workload trains in a child
  process, so that a hang, an exit or a crash is a failed record; ``faults.py``: the fault plan.

The caller owns the store: executors only hand back records.
"""
