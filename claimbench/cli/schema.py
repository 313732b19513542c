"""``claimbench schema``: the JSON Schema of suite files."""

from __future__ import annotations

import json

import click

from claimbench.paths import output_file
from claimbench.suite import json_schema
from claimbench.workloads import registry


@click.command()
@click.option("-o", "--output", default=None, help="Write the schema to this file instead of stdout.")
@click.option("--workloads", "workloads", is_flag=True,
              help="Include the [workload] sections of every installed workload (the shipped file has the built-ins).")
def schema(output: str | None, workloads: bool = False) -> None:
    """The JSON Schema of suite files (for editor validation)."""
    installed = [registry.get(n) for n in registry.installed()] if workloads else []
    text = json.dumps(json_schema(installed), indent=2) + "\n"
    if output:
        output_file(output, "-o").write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
