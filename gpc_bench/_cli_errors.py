"""Expected errors at the command line: a clear message and exit status 2, no traceback."""

from __future__ import annotations

import functools
import sys

import click

from ._errors import GpcBenchError

#: seeds as numpy's legacy and new generators both take them (a 32-bit unsigned integer)
SEED = click.IntRange(0, 2**32 - 1)


def friendly(fn):
    """Turn expected errors into a clear message and exit status 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GpcBenchError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

    return wrapper
