"""Atomic output: whole run folders and single files appear complete or not at all."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import InputError

logger = logging.getLogger(__name__)


def check_out_dir(out: str | Path, overwrite: bool = False) -> None:
    """Refuse an output folder that exists and is not empty (unless ``overwrite``): call it before
    long work, so that a run is not wasted."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(
            f"output folder {out} already exists and is not empty",
            "choose another --out, or pass --overwrite to replace it",
        )


def _alive(pid: int) -> bool:
    """Whether a process of this host is running (unknown counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # no permission to signal it, or a platform that cannot tell: leave it
        return True
    return True


def _remove_stale(parent: Path, name: str, host: str) -> None:
    """Remove temporary folders of ``name`` left by killed runs of this host."""
    prefix = f".{name}.tmp-{host}-"
    for p in parent.glob(f".{name}.tmp-*"):
        pid = p.name[len(prefix) :] if p.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            logger.info("removing %s, left by a run that is gone", p)
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def atomic_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it becomes ``out``, on error it is removed.

    Without ``overwrite``, a folder that appears at ``out`` while the work runs (another run
    started with the same ``--out``) is never replaced: this run then fails instead. Temporary
    folders left by killed runs of this host are removed on the way.
    """
    out = Path(out)
    check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    host = "".join(c if c.isalnum() else "_" for c in platform.node()) or "host"
    _remove_stale(out.parent, out.name, host)
    tmp = out.parent / f".{out.name}.tmp-{host}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if overwrite and out.exists():
            old = out.parent / f".{out.name}.old-{host}-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            _claim(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _claim(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out`` unless ``out`` now holds something (rename never merges folders)."""
    try:
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # an empty folder we were allowed to fill (Windows cannot rename onto it)
        os.rename(tmp, out)
    except OSError:
        if out.exists():
            raise InputError(
                f"output folder {out} was written by another run while this one was scoring",
                "give each run its own --out (or pass --overwrite to replace it)",
            ) from None
        raise


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it is renamed into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _clean(obj):
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return _clean(obj.item())
    return obj


def dumps_json(obj) -> str:
    """Deterministic JSON (sorted keys, NaN as null)."""
    return json.dumps(_clean(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
