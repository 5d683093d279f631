"""Progress on long work: a bar on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator


def progress(
    items: Iterable, total: int | None, desc: str, logger: logging.Logger, every: int = 1
) -> Iterator:
    """Iterate ``items`` with a :class:`Progress` (a bar on a terminal, else log lines)."""
    with Progress(total or 0, desc, logger, every) as bar:
        for item in items:
            yield item
            bar.step("%s: %d/%s", desc, bar.done + 1, total if total is not None else "?")


class Progress:
    """A progress bar on a terminal (INFO enabled), else one log line per step.

    Parameters
    ----------
    total
        Number of steps.
    desc
        Short label of a step (``"WSIs scored"``).
    logger
        Where the plain lines go, at INFO.
    every
        Without a terminal, log one line per this many steps (and the last).
    """

    def __init__(self, total: int, desc: str, logger: logging.Logger, every: int = 1) -> None:
        self.logger, self.total, self.every, self.done = logger, total, max(1, every), 0
        self.bar = None
        if sys.stderr.isatty() and logger.isEnabledFor(logging.INFO):
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, leave=False, file=sys.stderr)

    def step(self, message: str, *args) -> None:
        """One step done: advance the bar, or log ``message % args``."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.logger.debug(message, *args)
        elif self.done % self.every == 0 or self.done == self.total:
            self.logger.info(message, *args)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
