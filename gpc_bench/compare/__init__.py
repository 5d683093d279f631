"""Comparing runs: the leaderboard, its statistics, and the matched-variance pathway null."""

from .leaderboard import Leaderboard, leaderboard
from .runs import RunSet, load_runs

__all__ = ["Leaderboard", "RunSet", "leaderboard", "load_runs"]
