"""Exceptions with a problem statement and a hint."""

from __future__ import annotations


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


def examples(items, k: int = 5) -> str:
    """Format up to ``k`` example items for an error message."""
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:k])
    more = f", ... ({len(items)} in all)" if len(items) > k else ""
    return f"[{shown}{more}]"
