"""Exceptions with a problem statement and a hint."""

from __future__ import annotations

from collections.abc import Iterable


class GpcBenchError(Exception):
    """Base class of every error gpc-bench raises on purpose."""


class InputError(GpcBenchError, ValueError):
    """Bad input: names the problem and says how to fix it.

    Parameters
    ----------
    problem
        What is wrong, with the offending names or counts.
    hint
        What the user can do about it.
    """

    def __init__(self, problem: str, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(problem if hint is None else f"{problem}\n  hint: {hint}")


def examples(items: Iterable, k: int = 5) -> str:
    """Format up to ``k`` example items for an error message."""
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:k])
    more = f", ... ({len(items)} in all)" if len(items) > k else ""
    return f"[{shown}{more}]"


def suggest(name: str, names: Iterable[str], k: int = 3) -> str:
    """A hint naming the closest of ``names`` to ``name`` (difflib), or '' when none is close.

    A name that differs only by a prefix (``HYPOXIA`` for ``HALLMARK_HYPOXIA``) counts as close.
    """
    import difflib

    names = list(dict.fromkeys(str(n) for n in names))
    key = str(name).upper()
    close = [n for n in names if n.upper().endswith("_" + key) or n.upper() == key]
    close += difflib.get_close_matches(str(name), names, n=k, cutoff=0.6)
    close = list(dict.fromkeys(close))[:k]
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
