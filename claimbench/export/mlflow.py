"""A run dir as MLflow runs: one parent run per export, one nested run per trial.

- **Where:** MLflow's local file store ``./mlruns`` by default, or any tracking URI (``--tracking-uri``:
  a path or ``file:`` URI, ``http(s)://`` of a tracking server, ``sqlite:///...`` with the full
  ``mlflow`` package). MLflow 3 keeps the file store in maintenance mode and refuses it unless
  ``MLFLOW_ALLOW_FILE_STORE=true``: the export sets that for its own file store while it writes (a
  value you set yourself wins).
- **Experiment:** ``--experiment``, by default ``claimbench-<suite or group>-<tier>``.
- **The parent run** (``<name> [<tier>]``) holds the report and its data as artifacts
  (``report.html``, ``verdicts.json``) and the tag ``claimbench.run_dir``.
- **Each trial's run** (named by the spec values that vary in its suite, e.g.
  ``batch_size=4,lr=0.1,seed=0``; tag ``mlflow.parentRunId``) holds the spec's fields as params
  (nested values as JSON) plus ``trial_id``; its curve as metrics per step (``val_acc``,
  ``train_loss``, ``lr``, ...; step = training step); its final values as ``final/<name>``
  (``final/test_acc``, ``final/steps_to_target``, ...); tags ``claimbench.status`` (completed,
  diverged, failed), ``claimbench.suite``, ``claimbench.trial_id`` and, when set, the divergence
  reason or the error. Its MLflow status is FINISHED, or FAILED for a failed trial; a diverged trial
  is an outcome, so FINISHED with ``claimbench.status = diverged``.

Every export makes a new parent run (a snapshot of the run dir as it is); nothing is overwritten.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from claimbench.errors import UserError
from claimbench.export import ExportSource, curve_points, final_values, load_source, params, require
from claimbench.paths import output_dir, output_file

DEFAULT_STORE = "mlruns"
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
#: MLflow's limits for one log_batch call.
BATCH_PARAMS, BATCH_METRICS = 100, 1000
MAX_TAG_CHARS = 5000


@dataclass(frozen=True)
class MlflowExport:
    tracking_uri: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    runs: int  # trial runs written
    artifacts: list[str]


def tracking_uri_of(flag: str | None) -> tuple[str, Path | None]:
    """The tracking URI to write to, and its local directory when it is a file store (checked first)."""
    if not flag:
        path = Path(DEFAULT_STORE)
        output_dir(path, "--tracking-uri (default ./mlruns)")
        return path.resolve().as_uri(), path
    parsed = urlparse(flag)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):  # C:\\ is a path
        path = Path(parsed.path if parsed.scheme == "file" else flag)
        output_dir(path, "--tracking-uri")
        return path.resolve().as_uri(), path
    if parsed.scheme == "sqlite" and parsed.path not in ("", "/", "/:memory:"):
        output_file(Path(parsed.path[1:]), "--tracking-uri")  # sqlite:///rel.db, sqlite:////abs/x.db
    return flag, None


@contextlib.contextmanager
def _file_store_allowed(local: Path | None) -> Iterator[None]:
    """MLflow 3 refuses its file store unless told it may use it: tell it, for our own file store only."""
    if local is None or ALLOW_FILE_STORE in os.environ:
        yield
        return
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        os.environ.pop(ALLOW_FILE_STORE, None)


def export_mlflow(run_dir: str | Path, tracking_uri: str | None = None,
                  experiment: str | None = None) -> MlflowExport:
    """Write ``run_dir``'s trials to MLflow (module docstring); the run dir and the store are checked first."""
    source = load_source(run_dir)
    uri, local = tracking_uri_of(tracking_uri)
    require("mlflow", "claimbench export mlflow")
    from mlflow.exceptions import MlflowException  # optional and heavy: loaded only by an export, once checked

    name = experiment or f"claimbench-{source.name}-{source.tier}"
    try:
        with _file_store_allowed(local):
            return _write(source, uri, name)
    except MlflowException as e:
        raise UserError(f"MLflow refused the export: {str(e).splitlines()[0][:300]}", where=f"--tracking-uri {uri}",
                        fix="check the tracking URI (a writable directory, or a reachable tracking server)") from None


def _write(source: ExportSource, uri: str, name: str) -> MlflowExport:
    from mlflow.entities import Metric, Param  # optional and heavy: loaded only by an export
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    experiment_id = found.experiment_id if found else client.create_experiment(name)
    parent = client.create_run(experiment_id, run_name=f"{source.name} [{source.tier}]",
                               tags={"claimbench.run_dir": str(source.root.resolve()), "claimbench.tier": source.tier,
                                     "claimbench.trials": str(len(source.trials))})
    pid = parent.info.run_id
    artifacts = []
    for path in (source.report, source.verdicts):
        if path is not None:
            client.log_artifact(pid, str(path))
            artifacts.append(path.name)
    for t in source.trials:
        r = t.record
        tags = {"mlflow.parentRunId": pid, "claimbench.status": r.status.value, "claimbench.suite": t.suite,
                "claimbench.trial_id": r.trial_id}
        for key, text in (("claimbench.divergence_reason", r.divergence_reason), ("claimbench.error", r.error)):
            if text:
                tags[key] = text[:MAX_TAG_CHARS]
        run = client.create_run(experiment_id, run_name=t.label or r.trial_id[:12], tags=tags)
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for step, k, v in curve_points(r)]
        metrics += [Metric(f"final/{k}", v, now, r.steps_done or 0) for k, v in final_values(r).items()]
        ps = [Param(k, v) for k, v in params(r).items()]
        for i in range(0, len(metrics), BATCH_METRICS):
            client.log_batch(run.info.run_id, metrics=metrics[i:i + BATCH_METRICS])
        for i in range(0, len(ps), BATCH_PARAMS):
            client.log_batch(run.info.run_id, params=ps[i:i + BATCH_PARAMS])
        client.set_terminated(run.info.run_id, status="FAILED" if r.status.value == "failed" else "FINISHED")
    client.set_terminated(pid, status="FINISHED")
    return MlflowExport(tracking_uri=uri, experiment=name, experiment_id=experiment_id, parent_run_id=pid,
                        runs=len(source.trials), artifacts=artifacts)
