"""The ``reviewflow`` command: run a year's assessment from a terminal and a spreadsheet.

Exit codes: 0 done; 1 refused (a rule said no; the reason is printed), or a check
failed (``verify``); 2 bad usage or input (nothing was written); 3 an internal
error (a bug). A user error never prints a traceback. The exit code of an error and the
meaning printed for its reason code come from the one registry of codes,
:class:`reviewflow.exceptions.Reason` (see :func:`reviewflow.exceptions.exit_code`).

Run ``reviewflow --help`` for the commands; ``docs/reference/cli.md`` describes each.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from reviewflow._reasons import REFUSED, USAGE
from reviewflow.exceptions import REFUSALS, ReviewflowError, exit_code, reason_of
from reviewflow.i18n import Messages, detect_lang

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "app", "main"]

EXIT_OK = 0
EXIT_REFUSED = REFUSED
EXIT_USAGE = USAGE
EXIT_INTERNAL = 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.option("--db", "db", metavar="URL|PATH", help="Database URL or SQLite file "
              "[env REVIEWFLOW_DB; default: the campaign file's, else sqlite:///reviewflow.db].")
@click.option("--campaign", "campaign", metavar="ID", help="Campaign id (default: the only one "
              "in the database) [env REVIEWFLOW_CAMPAIGN].")
@click.option("--config", "config", metavar="FILE", help="Campaign file [env REVIEWFLOW_CONFIG; "
              "default ./reviewflow.toml if present].")
@click.option("--policy", "policy", metavar="FILE", help="Policy file (default: the campaign "
              "file's, else the policy stored with the campaign).")
@click.option("--now", "now", metavar="DATETIME", help="Act at this time, e.g. 2016-01-12T09:00+08:00 "
              "(a frozen clock: on a rehearsal campaign, or with --allow-frozen-clock; the "
              "steps say so) [env REVIEWFLOW_NOW].")
@click.option("--allow-frozen-clock", "allow_frozen_clock", is_flag=True,
              envvar="REVIEWFLOW_ALLOW_FROZEN_CLOCK", help="Allow --now on a campaign that is "
              "not a rehearsal (never later than the present; the steps say \"clock\": "
              "\"frozen\") [env REVIEWFLOW_ALLOW_FROZEN_CLOCK=1].")
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Language of messages "
              "[env REVIEWFLOW_LANG; default from the locale].")
@click.version_option(package_name="reviewflow", prog_name="reviewflow")
@click.pass_context
def app(ctx: click.Context, db: str | None, campaign: str | None, config: str | None,
        policy: str | None, now: str | None, lang: str | None,
        allow_frozen_clock: bool = False) -> None:
    """Run the annual report-and-review assessment (述职评议考核) from the command line.

    \b
    Quick start:
      reviewflow demo                          # a whole simulated campaign, 50 branches
      reviewflow init policy.toml              # a campaign from a policy file
      reviewflow cases import branches.xlsx    # organisations and secretaries
      reviewflow status                        # cases per stage, overdue, due soon

    Exit codes: 0 done, 1 refused (the reason is printed), 2 bad usage or input.
    """
    from reviewflow.cli._env import Env

    ctx.obj = Env(Messages(detect_lang(lang)), db_option=db, campaign_option=campaign,
                  config_option=config, policy_option=policy, now_option=now,
                  allow_frozen_clock=allow_frozen_clock)


def _register() -> None:
    from reviewflow.cli import _anchor, _audit, _cases, _policy, _results, _setup, _steps

    for module in (_setup, _policy, _cases, _steps, _audit, _results, _anchor):
        for command in module.COMMANDS:
            app.add_command(command)


_register_done = False


def _lang_from_argv(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return detect_lang(argv[i + 1])
        if arg.startswith("--lang="):
            return detect_lang(arg.split("=", 1)[1])
    return detect_lang()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: the process's arguments); return the exit code."""
    global _register_done
    if not _register_done:
        _register()
        _register_done = True
    args = list(sys.argv[1:] if argv is None else argv)
    msgs = Messages(_lang_from_argv(args))
    from reviewflow.cli._output import err_console

    err = err_console()  # control characters in any message are shown, never sent
    try:
        result: Any = app.main(args=args, prog_name="reviewflow", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        return EXIT_REFUSED
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except ReviewflowError as exc:
        _print_error(err, msgs, exc)
        return exit_code(exc)
    except OSError as exc:
        err.print(f"[bold red]{msgs('error')}:[/] {_escape(str(exc))}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        err.print(f"[bold red]{msgs('internal_error')}:[/] {type(exc).__name__}: {_escape(str(exc))}")
        if os.environ.get("REVIEWFLOW_DEBUG"):
            raise
        return EXIT_INTERNAL
    return int(result or 0)


def _escape(text: str) -> str:
    from reviewflow.cli._output import escape

    return escape(text)


def _print_error(err: Any, msgs: Messages, exc: ReviewflowError) -> None:
    """Print the error, then its reason code with the code's meaning (from the registry)
    and, for a content rule, every finding."""
    if isinstance(exc, REFUSALS):
        err.print(f"[bold yellow]{msgs('refused')}:[/] {_escape(str(exc))}")
    else:
        err.print(f"[bold red]{msgs('error')}:[/] {_escape(str(exc))}")
    reason = reason_of(exc)
    if reason is not None:
        err.print(f"  {msgs('reason')}: {reason} ({reason.meaning(msgs.lang)})")
    for finding in getattr(exc, "findings", ()) or ():
        err.print(f"  - {_escape(str(finding))}")
