"""A run dir as TensorBoard event files (``torch.utils.tensorboard.SummaryWriter``).

``LOGDIR/<suite>/<label>_<id>/`` per trial (``label``: the spec values that vary in its suite, e.g.
``batch_size=4,lr=0.1,seed=0``; ``id``: the trial id's first 12 characters), default
``LOGDIR = RUN_DIR/tensorboard``. Each holds the trial's curve as scalars per training step
(``val_acc``, ``train_loss``, ``lr``, ...), its final values as ``final/<name>`` at its last step,
and its spec and status as text (``spec``, ``status``). Exporting again replaces the event files of
the trials it writes (their old ``events.out.tfevents.*`` are removed first), so that a curve is
never drawn twice. Open it with ``tensorboard --logdir LOGDIR``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from claimbench.export import curve_points, final_values, load_source, require, safe_part
from claimbench.paths import inside, output_dir
from claimbench.trial import NOT_APPLICABLE

DEFAULT_LOGDIR = "tensorboard"  # under the run dir
EVENTS = "events.out.tfevents.*"


@dataclass(frozen=True)
class TensorboardExport:
    logdir: Path
    runs: int  # trial subdirs written


def export_tensorboard(run_dir: str | Path, logdir: str | Path | None = None) -> TensorboardExport:
    """Write ``run_dir``'s trials as event files under ``logdir`` (module docstring); checks first."""
    source = load_source(run_dir)
    out = output_dir(Path(logdir) if logdir else source.root / DEFAULT_LOGDIR,
                     "--logdir" if logdir else "--logdir (default RUN_DIR/tensorboard)")
    require("tensorboard", "claimbench export tensorboard")
    from torch.utils.tensorboard import SummaryWriter  # optional, and torch is heavy: loaded only by an export

    out.mkdir(parents=True, exist_ok=True)
    for t in source.trials:
        r = t.record
        sub = inside(out, safe_part(t.suite, "suite"), safe_part(f"{t.label}_{r.trial_id[:12]}" if t.label
                                                                   else r.trial_id[:12], "trial"))
        sub.mkdir(parents=True, exist_ok=True)
        for old in sub.glob(EVENTS):
            old.unlink()
        writer = SummaryWriter(log_dir=str(sub))
        try:
            for step, name, value in curve_points(r):
                writer.add_scalar(name, value, step)
            for name, value in final_values(r).items():
                writer.add_scalar(f"final/{name}", value, r.steps_done or 0)
            writer.add_text("status", r.status.value + (f": {r.divergence_reason or r.error}"
                                                        if (r.divergence_reason or r.error) else ""))
            spec = {"trial_id": r.trial_id, **r.settings(NOT_APPLICABLE)}
            writer.add_text("spec", "    " + json.dumps(spec, indent=1, default=str).replace("\n", "\n    "))
        finally:
            writer.close()
    return TensorboardExport(logdir=out, runs=len(source.trials))
