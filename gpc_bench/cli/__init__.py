"""The ``gpc-bench`` command line: each command parses options and calls the API.

The group is defined here; its commands live in one module per command group.
"""

from __future__ import annotations

import logging
import sys

import click

from .._cli_errors import friendly
from .._version import __version__

logger = logging.getLogger("gpc_bench")


def _setup_logging(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gpc-bench: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


_friendly = friendly


_OVERWRITE = click.option(
    "--overwrite", is_flag=True, help="Replace an existing output that gpc-bench wrote (never anything else)."
)

_GLOBAL_FLAGS = {"-q", "--quiet", "-v", "--verbose"}


class _Group(click.Group):
    """The top-level group: its -q/-v may also come after the subcommand (``gpc-bench score -q``)."""

    def parse_args(self, ctx, args):
        if ctx.parent is None:
            front, rest = [], []
            for i, a in enumerate(args):
                if a == "--":
                    rest.extend(args[i:])
                    break
                (front if a in _GLOBAL_FLAGS else rest).append(a)
            args = front + rest
        return super().parse_args(ctx, args)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gpc-bench")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("-v", "--verbose", is_flag=True, help="Debug output.")
def main(quiet: bool, verbose: bool) -> None:
    """gpc-bench: does a histology-to-expression model recover pathways, not just a few genes?"""
    _setup_logging(0 if quiet else (2 if verbose else 1))


def _add_commands() -> None:
    from gpc_bench.baselines.histoprism.cli import model_grp

    from . import _compare, _pathways, _score  # noqa: F401  (they register their commands on main)

    main.add_command(model_grp)


_add_commands()
