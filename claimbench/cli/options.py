"""Options and argument values that several verbs share: the same names, checked by the same code.

A bad value is one UserError line (exit 2), never click's usage block.
"""

from __future__ import annotations

import math
import shlex
import sys

import click

from claimbench.errors import UserError
from claimbench.runner.registry import check_executor_options
from claimbench.runner.packs import DEFAULT_PACK_SIZE
from claimbench.selection import parse
from claimbench.suite import TIERS

#: Options of every verb that writes run dirs (run, check, baseline).
FORCE_HELP = "Write into an --out that exists, is not empty and holds no claimbench run (refused without it)."
WAIT_HELP = "If another claimbench is writing the same run dir, wait for it to finish (default: exit 2)."


def writer_options(f):
    f = click.option("--wait", is_flag=True, help=WAIT_HELP)(f)
    return click.option("--force", is_flag=True, help=FORCE_HELP)(f)


class Tier(click.Choice):
    """``--tier``: one of TIERS; anything else is one UserError line (exit 2), not click's usage block."""

    def __init__(self) -> None:
        super().__init__(TIERS)

    def convert(self, value, param, ctx):
        if value in TIERS:
            return value
        raise UserError(f"unknown tier {value!r}", where="--tier", fix=f"use one of: {', '.join(TIERS)}")


class Count(click.ParamType):
    """A whole number option (``--pack-size``): anything else is one UserError line (exit 2), not click's usage block."""

    name = "integer"

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise UserError(f"must be a whole number, got {str(value)[:40]!r}", where=self.flag,
                            fix=f"pass a count, e.g. {self.flag} 8") from None


def tier_option(default: str):
    return click.option("--tier", default=default, show_default=True, type=Tier(),
                        help="The suites' scale: smoke (seconds), ci, default (a laptop CPU) or full (a GPU cluster).")


K_HELP = ("Only claims whose id or suite name contains a word of EXPR (pytest-like: 'B2', 'B2 or L3', "
          "'batch and not B3', 'B1,B4'); only the suites holding one are trained.")
SEEDS_HELP = "Seeds 0..N-1 instead of the tier's (within the suite's limits); the default --out gets -seedsN."
DRY_HELP = "Print the trials (cached and new), the packs and an estimate of the time; train and write nothing."


def plan_options(f):
    """Options of every verb that trains (run, check, baseline): the same names, checked by the same code."""
    f = click.option("--gpus-per-trial", type=float, default=None,
                     help="GPUs of one trial's Ray slot; fractions share a GPU [default: the suite's [resources], else 0].")(f)
    f = click.option("--cpus-per-trial", type=float, default=None,
                     help="CPUs of one trial's Ray slot (torch threads) [default: the suite's [resources], else 1].")(f)
    f = click.option("--pack-size", default=DEFAULT_PACK_SIZE, show_default=True, type=Count("--pack-size"),
                     help="The most trials per pack sent to a worker (packs are as wide as the measured width, "
                          "memory and load balance allow, up to this).")(f)
    f = click.option("--trial-timeout", "trial_timeout", default=None, metavar="SECONDS",
                     help="Each trial's wall-clock limit: past it, it is recorded failed and the run goes on "
                          "[default: the suite's [limits] trial_timeout, else its estimate x 10, at least 300 s].")(f)
    f = click.option("--cache", "cache", default=None, metavar="DIR|URL",
                     help="A shared trial cache (a folder or an fsspec URL such as s3://bucket/prefix): verified records "
                          "found there are not retrained, and trained ones are added [default: $CLAIMBENCH_CACHE].")(f)
    f = click.option("--dry-run", "dry_run", is_flag=True, help=DRY_HELP)(f)
    f = click.option("--seeds", "seeds", default=None, metavar="N", help=SEEDS_HELP)(f)
    return click.option("-k", "expr", default=None, metavar="EXPR", help=K_HELP)(f)


def check_run_options(executor: str, address: str | None, pack_size: int, cpus_per_trial: float | None,
                      gpus_per_trial: float | None) -> None:
    """The executor, pack size and slot resources of run, check and baseline: one check for all three."""
    if pack_size < 1:
        raise UserError(f"--pack-size must be >= 1, got {pack_size}", where="--pack-size", fix="pass a positive integer")
    check_executor_options(executor, address, cpus_per_trial, gpus_per_trial)


def seed_count(seeds: str | None) -> int | None:
    """``--seeds N`` as a count (>= 1; the suites' limits check the rest when they load), or None."""
    if seeds is None:
        return None
    try:
        n = int(seeds)
    except ValueError:
        n = 0
    if n < 1 or str(seeds).strip() != str(n):
        raise UserError(f"must be a whole number of seeds >= 1, got {seeds!r}", where="--seeds",
                        fix="pass a count, e.g. --seeds 5")
    return n


def timeout_seconds(value: str | None) -> float | None:
    """``--trial-timeout SECONDS`` as a number > 0 (finite), or None."""
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise UserError(f"must be a number of seconds > 0, got {str(value)[:40]!r}", where="--trial-timeout",
                        fix="pass e.g. --trial-timeout 600")
    return x


def seeds_suffix(seeds: int | None) -> str:
    """The default out dir of a --seeds run differs from the tier's: it never mixes with a normal run's report."""
    return "" if seeds is None else f"-seeds{seeds}"


def selection_of(expr: str | None):
    """``-k EXPR`` parsed (``claimbench.selection``), or None without it."""
    return None if expr is None else parse(expr)


def command_line() -> str:
    """This command as typed (recorded in the run dir and the report, so that it can be rerun)."""
    return "claimbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
