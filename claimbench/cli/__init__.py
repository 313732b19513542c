"""The command line: one module per verb (``cli/<verb>.py``; ``list_.py`` for ``list``), the options
they share (``options.py``) and what the training verbs do before training (``prepare.py``). ``main``
turns a UserError into one line and exit code 2."""

from __future__ import annotations

import errno
import re
import sys

import click

from claimbench.cli import baseline, calibrate, check, compare, export, list_, report, run, schema
from claimbench.errors import UserError
from claimbench.store.files import storage_error
from claimbench.store.lock import release_all


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="claimbench")
def cli() -> None:
    """Turn training claims into experiments, run them on Ray, answer each with a verdict."""


for _command in (run.run, report.report, list_.list_, schema.schema, calibrate.calibrate, check.check,
                 baseline.baseline, compare.compare, export.export):
    cli.add_command(_command)


def _storage_error(e: OSError):
    """The one line of a write the file system refused (store.STORAGE_ERRNOS); pyarrow's errors carry no errno,
    so their message is read. None for any other OSError (a bug: its traceback stays)."""
    if e.errno is None:
        text = str(e)
        for code, words in ((errno.ENOSPC, "No space left"), (errno.EDQUOT, "quota exceeded"),
                            (errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied")):
            if words.lower() in text.lower():
                return storage_error(OSError(code, words, getattr(e, "filename", None)), _path_in(text))
        return None
    return storage_error(e)


def _path_in(text: str) -> str | None:
    """The first absolute path in an error message (pyarrow names the file it failed on), else None."""
    m = re.search(r"(/[^\s'\"]+)", text)
    return m.group(1).rstrip(".,:;") if m else None


def main(argv: list[str] | None = None) -> None:
    """The console script ``claimbench``: a UserError (or a write the file system refused) is one line on stderr
    and exit code 2; an interrupt exits 130; anything else is a bug and keeps its traceback."""
    try:
        cli.main(args=argv, prog_name="claimbench", standalone_mode=False)
    except UserError as e:
        click.echo(f"claimbench: error: {e}", err=True)
        sys.exit(2)
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        # the file system refused a write the checks up front did not foresee (e.g. a dir made read-only
        # mid-run): the user's to fix, so one line, not a traceback
        click.echo(f"claimbench: error: {e.filename or ''}: {e.strerror} — fix: make it writable, or choose "
                   "another output path", err=True)
        sys.exit(2)
    except OSError as e:  # a full disk, a quota or a read-only file system under a write no check foresaw
        error = _storage_error(e)
        if error is None:
            raise
        click.echo(f"claimbench: error: {error}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("claimbench: interrupted; finished trials are saved; rerun the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("claimbench: interrupted; finished trials are saved; rerun the same command to resume", err=True)
        sys.exit(130)
    finally:
        release_all()


if __name__ == "__main__":
    main()
