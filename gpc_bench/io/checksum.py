"""sha256 of input files, remembered per file version so that re-scoring a file is free.

Hashing runs at about 1 GiB/s here, slower than reading a cached file, so for a 20 GB cohort it
would cost more than the scoring itself.  A digest is therefore stored in the user cache dir
under the file's identity (real path, device, inode, size, mtime and ctime in nanoseconds) and
reused while none of these change; any write to the file changes its mtime and ctime.  The run
summary says whether a digest was computed or reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

_CACHE_FILE = "sha256.json"
_MAX_ENTRIES = 2000


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _load(store: Path) -> dict:
    try:
        data = json.loads(store.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def file_sha256(path: str | Path, use_cache: bool = True, *, cache: str | Path) -> tuple[str, bool]:
    """sha256 of ``path`` and whether it came from the cache.

    With ``use_cache``, a digest stored for the same file version in the folder ``cache``
    (:meth:`gpc_bench.settings.Settings.resolved_cache_dir`) is returned; a new digest is stored
    (best effort: an unwritable cache dir only costs the next run the hashing again).
    """
    path = Path(path)
    if not use_cache:
        return sha256_file(path), False
    store = Path(cache) / _CACHE_FILE
    key = _identity(path)
    hit = _load(store).get(key)
    if isinstance(hit, str) and len(hit) == 64:
        return hit, True
    digest = sha256_file(path)
    if _identity(path) != key:  # changed while being hashed: do not remember it
        return digest, False
    try:
        entries = _load(store)
        entries[key] = digest
        entries = dict(list(entries.items())[-_MAX_ENTRIES:])
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f".{store.name}.{os.getpid()}")
        tmp.write_text(json.dumps(entries, indent=0, sort_keys=False))
        os.replace(tmp, store)
    except OSError as err:
        logger.debug("cannot store the checksum in %s: %s", store, err)
    return digest, False
