"""The CI gate: claim results compared with a baseline of earlier ones. Pure comparison of values:
nothing here trains, evaluates a run dir or writes a report (``api`` runs; ``report`` writes).

- ``baseline``: the baseline file (its format, its validation, its lock) and the per-seed values it keeps;
- ``gate``: the rule that passes or fails each claim against its baseline entry;
- ``compare``: two evaluated runs, claim by claim, under the gate's rule (``claimbench compare``).
"""
