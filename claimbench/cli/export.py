"""``claimbench export mlflow|tensorboard RUN_DIR``: a run dir's trials in tools users already run
(``claimbench.export``). The libraries load when a command runs, after the run dir and the output path
are checked."""

from __future__ import annotations

import click

from claimbench.export.mlflow import export_mlflow
from claimbench.export.tensorboard import export_tensorboard


@click.group("export")
def export() -> None:
    """Export a run dir's trials to MLflow or TensorBoard (pip install 'claimbench[export]')."""


@export.command("mlflow")
@click.argument("run_dir")
@click.option("--tracking-uri", default=None,
              help="Where to write: a directory or file: URI (a local file store), http(s):// of a tracking server, "
                   "sqlite:///FILE [default: ./mlruns].")
@click.option("--experiment", default=None, help="MLflow experiment name [default: claimbench-NAME-TIER].")
def mlflow_command(run_dir: str, tracking_uri: str | None, experiment: str | None) -> None:
    """One MLflow run per trial of RUN_DIR (params, metrics per step, status, final metrics), nested under
    a parent run that holds report.html and verdicts.json as artifacts."""
    done = export_mlflow(run_dir, tracking_uri, experiment)
    click.echo(f"mlflow: {done.runs} trial runs in experiment {done.experiment!r} (id {done.experiment_id}) under "
               f"parent run {done.parent_run_id}"
               + (f" with {', '.join(done.artifacts)}" if done.artifacts else " (no report to attach yet)"))
    click.echo(f"tracking URI: {done.tracking_uri}")


@export.command("tensorboard")
@click.argument("run_dir")
@click.option("--logdir", default=None, help="Where to write the event files [default: RUN_DIR/tensorboard].")
def tensorboard_command(run_dir: str, logdir: str | None) -> None:
    """TensorBoard event files of RUN_DIR: one subdir per trial, its curve as scalars per step."""
    done = export_tensorboard(run_dir, logdir)
    click.echo(f"tensorboard: {done.runs} trials in {done.logdir}; view with: tensorboard --logdir {done.logdir}")
