"""Progress on long work: a bar on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator


def progress(
    items: Iterable, total: int | None, desc: str, logger: logging.Logger, every: int = 1
) -> Iterator:
    """Iterate ``items`` with a progress bar when stderr is a terminal, else log every ``every`` items.

    Parameters
    ----------
    items
        What to iterate.
    total
        Number of items (for the bar and the log lines).
    desc
        Short label.
    logger
        Where the plain lines go (at INFO).
    every
        Log one line per this many items when there is no terminal.
    """
    if sys.stderr.isatty() and logger.isEnabledFor(logging.INFO):
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
            pass
        else:
            yield from tqdm(items, total=total, desc=desc, leave=False, file=sys.stderr)
            return
    for i, item in enumerate(items, 1):
        yield item
        if i % every == 0 or i == total:
            logger.debug("%s: %d/%s", desc, i, total if total is not None else "?")
