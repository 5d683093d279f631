"""The ``gpc-bench`` console script: Ctrl-C ends any command with one line and exit status 130.

The SIGINT handler is installed before the command line is even imported. The first Ctrl-C raises
KeyboardInterrupt, so that temporary outputs are removed on the way out; it is also remembered,
so that an interrupt swallowed by a library cannot let the run go on to write its outputs
(:func:`check_interrupt` runs before every output is committed). A second Ctrl-C exits at once.
"""

from __future__ import annotations

import os
import signal
import sys

_INTERRUPTS = [0]
EXIT_INTERRUPTED = 130
_MESSAGE = "gpc-bench: interrupted\n"


def _on_sigint(signum, frame) -> None:
    _INTERRUPTS[0] += 1
    if _INTERRUPTS[0] > 1:
        os.write(2, _MESSAGE.encode())
        os._exit(EXIT_INTERRUPTED)
    raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether this process has been sent Ctrl-C."""
    return _INTERRUPTS[0] > 0


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came, even if something caught it since."""
    if interrupted():
        raise KeyboardInterrupt


def _interrupted_exit() -> None:
    sys.stderr.write(_MESSAGE)
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)  # no interpreter teardown: background threads may still be busy


def run(argv: list[str] | None = None) -> None:
    """Run the command line (the console script's entry point)."""
    try:
        signal.signal(signal.SIGINT, _on_sigint)
    except ValueError:  # not the main thread (an embedding host): keep its handler
        pass
    try:
        import click

        from .cli import main

        rv = main.main(args=argv, prog_name="gpc-bench", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _interrupted_exit()
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:  # the output was piped into a command that ended (`| head`)
        sys.stderr.close()
        sys.exit(1)
    try:  # the command is done: a Ctrl-C from here on must not kill the exit half-way
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        pass
    if interrupted():  # swallowed somewhere, yet the command finished
        _interrupted_exit()
    if isinstance(rv, int) and rv:  # --help, --version and ctx.exit(code) return their status
        sys.exit(rv)
