"""Safe, atomic output: folders and files appear complete or not at all, and nothing that gpc-bench
did not write is ever replaced or deleted.

Every output is checked before any work (:func:`check_out`): not a symbolic link, not the current
folder, not an input and not a folder holding one, writable, and -- when it exists -- replaced only
with ``overwrite`` and only when gpc-bench wrote it (a folder's ``.gpc-bench.json`` marker, or a
file's signature). Outputs are written under temporary siblings and renamed into place; a write
error becomes a message and leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import InputError

logger = logging.getLogger(__name__)

#: the file that marks a folder as gpc-bench's, naming what kind of output it is
MARKER = ".gpc-bench.json"
#: folders gpc-bench wrote before the marker existed: recognised by this file holding a
#: ``gpc_bench_version`` key
_LEGACY = {"run": "summary.json", "collection": "manifest.json", "training run": "train_summary.json"}
_NAME_MAX = 255


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in platform.node()) or "host"


def _tmp_name(name: str, what: str = "tmp") -> str:
    return f".{name}.{what}-{_host()}-{os.getpid()}"


def _json_dict(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def folder_kind(path: Path) -> str | None:
    """The kind of gpc-bench output a folder holds (its marker, or a legacy main file), else None."""
    marker = _json_dict(path / MARKER)
    if marker is not None and isinstance(marker.get("kind"), str):
        return marker["kind"]
    for kind, name in _LEGACY.items():
        legacy = _json_dict(path / name)
        if legacy is not None and "gpc_bench_version" in legacy:
            return kind
    return None


def file_is_ours(path: Path) -> bool:
    """Whether gpc-bench wrote this file: its signature (figures, reports, h5ad), or for a table its
    sibling JSON (``X.json`` or the one that lists it)."""
    if path.suffix == ".json":
        d = _json_dict(path)
        return d is not None and "gpc_bench_version" in d
    if path.suffix == ".csv":
        sidecars = [path.with_suffix(".json"), *path.parent.glob("*.json")]
        for side in sidecars:
            d = _json_dict(side) if side.is_file() else None
            if d and "gpc_bench_version" in d and (side.stem == path.stem or path.name in d.get("files", [])):
                return True
        return False
    if path.suffix == ".h5ad":
        try:
            import h5py

            with h5py.File(path, "r") as f:
                return "uns" in f and any(k.startswith("gpc_bench") for k in f["uns"])
        except Exception:  # not HDF5: not ours
            return False
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            f.seek(max(0, size - (1 << 16)))
            tail = f.read()
    except OSError:
        return False
    return b"gpc-bench" in head or b"gpc-bench" in tail


def _check_place(out: Path, inputs: Iterable) -> None:
    """Not a link, not the current folder (or one above it), not an input or a folder holding one."""
    if out.is_symlink():
        raise InputError(
            f"--out {out} is a symbolic link", f"give the real path ({os.path.realpath(out)}) instead"
        )
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(
            f"--out {out} is the current folder or holds it", "give a new folder, e.g. --out runs/NAME"
        )
    for inp in inputs:
        if not isinstance(inp, str | os.PathLike):
            continue
        ri = Path(inp).resolve()
        if ri == resolved:
            raise InputError(f"--out {out} is an input of this command", "write the output to another path")
        if resolved in ri.parents:
            raise InputError(
                f"--out {out} holds the input {inp}: replacing it would delete the input",
                "write the output to a new folder",
            )


def _check_existing(out: Path, kind: str, folder: bool, overwrite: bool) -> None:
    if not out.exists():
        return
    if folder:
        if not out.is_dir():
            raise InputError(f"--out {out} is a file, not a folder", "give a folder path for the output")
        if not any(out.iterdir()):
            return
        if not overwrite:
            raise InputError(
                f"output folder {out} already exists and is not empty",
                "choose another --out, or pass --overwrite to replace it",
            )
        found = folder_kind(out)
        if found != kind:
            what = f"a gpc-bench {found} folder" if found else "not a folder gpc-bench wrote"
            raise InputError(
                f"--overwrite replaces only a gpc-bench {kind} folder, and {out} is {what}",
                "remove it yourself if it may go, or choose another --out",
            )
        return
    if out.is_dir():
        raise InputError(f"--out {out} is a folder, not a file", "give a file path for the output")
    if not overwrite:
        raise InputError(f"{out} already exists", "choose another --out, or pass --overwrite to replace it")
    if not file_is_ours(out):
        raise InputError(
            f"--overwrite replaces only files gpc-bench wrote, and {out} is not one",
            "remove it yourself if it may go, or choose another --out",
        )


def _check_writable(out: Path) -> None:
    """The parent exists as a folder (or can be made), the temporary sibling's name fits, and a
    probe folder can be made and removed there."""
    if len(os.fsencode(_tmp_name(out.name))) > _NAME_MAX:
        raise InputError(
            f"--out {out}: the name is too long ({len(out.name)} characters)", "choose a shorter name"
        )
    parent = out.parent
    missing: list[Path] = []
    while not parent.exists():
        if parent.is_symlink():  # a dangling link
            raise InputError(f"--out {out}: {parent} is a broken symbolic link", "give a real path")
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is a file, not a folder", "give a path inside a folder")
    probe = missing[-1] if missing else out.parent / _tmp_name(out.name, "probe")
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        raise InputError(
            f"--out {out} cannot be written: {err.strerror or err}", "choose a writable place"
        ) from None


def check_out(
    out: str | Path, *, kind: str, overwrite: bool = False, inputs: Iterable = (), folder: bool = True
) -> Path:
    """Refuse an output path before any work (see the module docstring); returns it as a Path.

    Parameters
    ----------
    out
        The folder (``folder=True``) or file to write.
    kind
        What gpc-bench writes there (``run``, ``collection``, ``leaderboard``, ``figure``, ...): an
        existing folder is replaced only when it holds the same kind.
    overwrite
        Replace an existing output that gpc-bench wrote.
    inputs
        Paths the command reads: the output may neither be one nor hold one.
    """
    out = Path(out)
    _check_place(out, inputs)
    _check_existing(out, kind, folder, overwrite)
    _check_writable(out)
    return out


def check_out_dir(
    out: str | Path, overwrite: bool = False, *, kind: str = "run", inputs: Iterable = ()
) -> None:
    """:func:`check_out` for a folder."""
    check_out(out, kind=kind, overwrite=overwrite, inputs=inputs)


def _alive(pid: int) -> bool:
    """Whether a process of this host is running (unknown counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # no permission to signal it, or a platform that cannot tell: leave it
        return True
    return True


def _dead_siblings(parent: Path, name: str, what: str) -> list[Path]:
    prefix = f".{name}.{what}-{_host()}-"
    found = []
    for p in parent.glob(f".{name}.{what}-*"):
        pid = p.name[len(prefix) :] if p.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            found.append(p)
    return found


def _remove(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def recover_stale(out: Path) -> None:
    """Clean up after killed runs of this host: remove their temporary siblings of ``out``, and put
    back a previous output that a run killed mid-replacement left as ``.NAME.old-*``."""
    parent, name = out.parent, out.name
    if not parent.is_dir():
        return
    for p in _dead_siblings(parent, name, "tmp"):
        logger.info("removing %s, left by a run that is gone", p)
        _remove(p)
    for p in _dead_siblings(parent, name, "old"):
        if out.exists() or out.is_symlink():
            logger.info("removing %s, the output a killed run had replaced", p)
            _remove(p)
        else:
            logger.warning("restoring %s from %s, left by a run killed while replacing it", out, p)
            os.rename(p, out)


def _check_interrupt() -> None:
    """Nothing is committed after Ctrl-C, even one that a library swallowed."""
    from .._entry import check_interrupt

    check_interrupt()


def _write_error(out: Path, err: OSError) -> InputError:
    return InputError(
        f"could not write {out}: {err.strerror or err}" + (f" ({err.filename})" if err.filename else ""),
        "check free space and permissions; nothing was written",
    )


def write_marker(folder: Path, kind: str) -> None:
    """Mark ``folder`` as a gpc-bench output of ``kind``."""
    from .._version import __version__

    (folder / MARKER).write_text(dumps_json({"kind": kind, "gpc_bench_version": __version__}))


@contextmanager
def atomic_dir(
    out: str | Path, overwrite: bool = False, *, kind: str = "run", inputs: Iterable = ()
) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it becomes ``out``, on error it is removed.

    The folder gets the marker of ``kind``. Without ``overwrite``, a folder that appears at ``out``
    while the work runs (another run with the same ``--out``) is never replaced: this run then fails
    instead. Leftovers of killed runs of this host are cleaned up on the way.
    """
    out = check_out(out, kind=kind, overwrite=overwrite, inputs=inputs)
    tmp = out.parent / _tmp_name(out.name)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        recover_stale(out)
        check_out(out, kind=kind, overwrite=overwrite, inputs=inputs)  # a restored folder counts
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    except OSError as err:
        raise _write_error(out, err) from None
    try:
        yield tmp
        write_marker(tmp, kind)
        _check_interrupt()
        if overwrite and out.exists() and any(out.iterdir()):
            check_out(out, kind=kind, overwrite=True, inputs=inputs)
            old = out.parent / _tmp_name(out.name, "old")
            out.rename(old)
            tmp.rename(out)
            _remove(old)
        else:
            _claim(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(out, err) from None
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
                f"output folder {out} was written by another run while this one was working",
                "give each run its own --out (or pass --overwrite to replace it)",
            ) from None
        raise


@contextmanager
def atomic_file(
    path: str | Path,
    *,
    check: bool = False,
    kind: str = "file",
    overwrite: bool = True,
    inputs: Iterable = (),
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it is renamed into place on success.

    With ``check``, ``path`` is first checked as :func:`check_out` does (``kind``, ``overwrite``,
    ``inputs``). A write error becomes a message, and the temporary file is removed.
    """
    path = Path(path)
    if check:
        check_out(path, kind=kind, overwrite=overwrite, inputs=inputs, folder=False)
    tmp = path.parent / _tmp_name(path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        recover_stale(path)
        yield tmp
        _check_interrupt()
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(path, err) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def check_files(
    folder: str | Path, names: Iterable[str], *, kind: str, overwrite: bool = False, inputs: Iterable = ()
) -> None:
    """:func:`check_out` for each of several files written together into ``folder``."""
    for name in names:
        check_out(Path(folder) / name, kind=kind, overwrite=overwrite, inputs=inputs, folder=False)


@contextmanager
def _lock(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """An exclusive lock file (``O_EXCL``, portable); one left by a dead process of this host is
    taken over."""
    import time

    me = f"{_host()} {os.getpid()}"
    t0 = time.monotonic()
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
                if host == _host() and pid.isdigit() and not _alive(int(pid)):
                    path.unlink(missing_ok=True)
                    continue
            except (OSError, ValueError):  # being written or removed: wait
                pass
            if time.monotonic() - t0 > timeout:
                raise InputError(
                    f"{path.parent} is locked by another gpc-bench command ({path.name})",
                    "wait for it to finish, or remove the lock file if no such command runs",
                ) from None
            time.sleep(0.05)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def atomic_files(
    folder: str | Path, files: dict, *, kind: str, overwrite: bool = False, inputs: Iterable = ()
) -> list[Path]:
    """Write several files into ``folder`` as one unit.

    ``files`` maps a name to a function that writes that file at the path it is given. Every file
    is checked first (:func:`check_files`), then all are written into a temporary sibling folder,
    and moved into place together under a lock, so that two commands writing the same outputs at
    once leave one's complete set, never a mix. Nothing is left behind on error, and leftovers of
    killed commands are cleaned up.
    """
    folder = Path(folder)
    names = list(files)
    check_files(folder, names, kind=kind, overwrite=overwrite, inputs=inputs)
    unit = folder / names[0]
    tmp = folder / _tmp_name(names[0])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        recover_stale(unit)
        tmp.mkdir()
        for name, write in files.items():
            write(tmp / name)
        _check_interrupt()
        with _lock(folder / f".{names[0]}.lock"):
            check_files(folder, names, kind=kind, overwrite=overwrite, inputs=inputs)  # another may have won
            for name in names:
                os.replace(tmp / name, folder / name)
    except OSError as err:
        raise _write_error(unit, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [folder / n for n in names]


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


def dumps_json(obj: object) -> str:
    """Deterministic JSON (sorted keys, NaN as null)."""
    return json.dumps(_clean(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
