"""How the ``tierchain`` command line reports failure: one line on stderr, a named exit code.

Exit codes (docs/operations.md):

* 2: bad arguments (click's usage errors: a missing or malformed argument, an unknown
  option or command) and bad configuration (``ConfigError``): nothing was done.
* 1: the command failed while running: a ``TierChainError`` (node unreachable, database
  missing or locked, key file that does not open, ...) or an ``OSError`` (a busy port, a
  file that cannot be written). A command's own refusal (a rejected transaction) is 1 too.
* Commands may document others (``cluster``: 3 unreachable).

An exception that is none of these is a bug: it is reported as one line naming its type,
unless ``--log-level debug`` was given, in which case it propagates with its traceback.
The root group (``TierChainGroup``) does this for every subcommand, so a command added
later is covered without doing anything; ``CliRunner`` tests see the same behaviour as
the console entry point.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from tierchain.config import ConfigError
from tierchain.errors import TierChainError

EXIT_FAILED, EXIT_USAGE = 1, 2


class CommandFailed(click.ClickException):
    """A runtime failure already turned into its one-line message and exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """``text`` with its lines joined: a message must stay one line on a terminal or in a log."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(exc: BaseException) -> str:
    """``Type: message``: the error's name says what kind of failure it is."""
    return one_line(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__


class TierChainGroup(click.Group):
    """The root command group: turns every failure into one line (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, EOFError):
            raise
        except ConfigError as exc:
            raise CommandFailed(describe(exc), EXIT_USAGE) from exc
        except (TierChainError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # the reader went away (`| head`): click exits quietly
            raise CommandFailed(describe(exc)) from exc
        except Exception as exc:
            if ctx.params.get("log_level") == "debug":
                raise
            raise CommandFailed(
                f"internal error: {describe(exc)} (run with --log-level debug for the traceback)"
            ) from exc

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # a group given no command: its help is the useful answer
            _exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", EXIT_FAILED)
        _exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {one_line(message)}", err=True)
    _exit(code)


def _exit(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.exit(code)
