"""Packaging guard: every sub-package on disk must be listed in pyproject.toml.

A non-editable install (what CI and users do) only ships the packages listed
explicitly, so a forgotten entry passes locally with ``pip install -e`` and
fails everywhere else.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _on_disk() -> set[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = cfg["tool"]["setuptools"]["package-dir"]
    found = set()
    for pkg, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            if ".cache" in init.parts or "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(base)
            parts = [pkg, *rel.parts] if rel.parts else [pkg]
            name = ".".join(parts)
            found.add(name)
    return found


def test_all_subpackages_are_listed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(cfg["tool"]["setuptools"]["packages"])
    missing = _on_disk() - listed
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
