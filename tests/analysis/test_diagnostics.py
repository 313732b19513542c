"""The protocol diagnostics (analysis/diagnostics.py)."""

from __future__ import annotations

import pandas as pd



def test_tuned_points_are_each_selected_cells_trials_with_the_pick_marked():
    from claimbench.analysis.diagnostics import tuned_points

    rows = [{"trial_id": f"{b}-{lr}-{s}", "seed": s, "batch_size": b, "lr": lr, "status": "completed",
             "val_acc": 0.5 + 0.1 * (lr == 0.1) + 0.01 * s}
            for s in (0, 1) for b in (8, 32) for lr in (0.01, 0.1, 1.0)]
    frame = pd.DataFrame(rows)
    selected = [{"group": f"batch_size={b}", "seed": s, "trial_ids": [f"{b}-0.1-{s}"]} for s in (0, 1) for b in (8, 32)]
    got = tuned_points(frame, selected, ["lr"], "val_acc")
    assert got["axis"] == "lr" and got["metric"] == "val_acc" and len(got["points"]) == 12
    picks = [(p["group"], p["seed"], p["value"]) for p in got["points"] if p["selected"]]
    assert sorted(picks) == sorted((f"batch_size={b}", s, 0.1) for s in (0, 1) for b in (8, 32))
    assert tuned_points(frame, selected, [], "val_acc") is None  # nothing tuned: nothing to draw
