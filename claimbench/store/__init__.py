"""The store: what a run keeps on disk, and how it is written and read back.

- ``rundir.py``: the run directory (``RunStore``): run.json, one verified record per trial id, quarantine.
- ``records.py``: a record as stored: its content digest and its verification (``record_problem``).
- ``lock.py``: one writer per run dir, and writers of a shared file queued behind each other.
- ``files.py``: files written whole or not at all, read without blocking, storage errors as one line.
"""
