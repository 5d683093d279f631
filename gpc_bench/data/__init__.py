"""Data files shipped with gpc-bench (gene ID table)."""
