"""``claimbench schema``: the JSON Schema of suite files."""

from __future__ import annotations

import json

import click

from claimbench.paths import output_file
from claimbench.suite import json_schema
from claimbench.suite.schema import claims_reference
from claimbench.workloads import registry


@click.command()
@click.option("-o", "--output", default=None, help="Write the schema to this file instead of stdout.")
@click.option("--workloads", "workloads", is_flag=True,
              help="Include the [workload] sections of every installed workload (the shipped file has the built-ins).")
@click.option("--claims", "claims", is_flag=True,
              help="Instead, the claim kinds' reference in Markdown: statistic, decision and parameters (docs/claims.md).")
def schema(output: str | None, workloads: bool = False, claims: bool = False) -> None:
    """The JSON Schema of suite files (for editor validation), or with --claims the claim kinds' reference."""
    installed = [registry.get(n) for n in registry.installed()] if workloads else []
    text = claims_reference() if claims else json.dumps(json_schema(installed), indent=2) + "\n"
    if output:
        output_file(output, "-o").write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
