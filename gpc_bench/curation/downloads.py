"""Fetch curation sources for users with internet: MSigDB GMTs (gseapy) and GO files (goatools).

Files are cached under the user cache dir (``platformdirs.user_cache_dir("gpc-bench")``, or
``$GPC_BENCH_CACHE``) and reused; every file's URL is returned so that the collection manifest
records where it came from.  The base URLs are parameters so that tests can point them at a
local server.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from .._errors import InputError
from .._progress import Progress
from ..io.gmt import GeneSet, write_gmt
from ..settings import Settings

logger = logging.getLogger(__name__)

GO_CURRENT_OBO = "http://purl.obolibrary.org/obo/go/go-basic.obo"  # what goatools' downloader uses
GO_CURRENT_GAF = "http://current.geneontology.org/annotations/goa_human.gaf.gz"
GO_RELEASE_URL = "http://release.geneontology.org/{release}"  # archived, dated releases


def _msigdb_version(release: str) -> str:
    if not re.fullmatch(r"\d{4}\.\d+(\.(Hs|Mm))?|\d+\.\d+(\.\d+)?", release):
        raise InputError(
            f"--msigdb-release {release!r} is not an MSigDB release", "for example 2025.1 or 2025.1.Hs"
        )
    if re.fullmatch(r"\d{4}\.\d+", release):
        release += ".Hs"  # MSigDB's human collections
    return release


def fetch_msigdb(
    release: str, categories: Sequence[str] = ("h.all", "c5.go"), *, settings: Settings
) -> list[dict]:
    """Download MSigDB symbol GMTs with gseapy's ``Msigdb.get_gmt`` (cached in ``settings``' cache dir).

    The server is gseapy's default (``gseapy.Msigdb.url``) unless ``settings.msigdb_url``
    (``$GPC_BENCH_MSIGDB_URL``, a mirror) says otherwise.  Returns one record per category:
    ``{"category", "path", "url"}``.
    """
    from gseapy import Msigdb

    dbver = _msigdb_version(release)
    folder = settings.resolved_cache_dir() / "msigdb" / dbver
    folder.mkdir(parents=True, exist_ok=True)
    old = Msigdb.url
    base = settings.msigdb_url or old
    out = []
    bar = Progress(len(categories), "MSigDB downloads", logger)
    try:
        Msigdb.url = base
        for cat in categories:
            name = f"{cat}.v{dbver}.symbols.gmt"
            path = folder / name
            url = f"{base.rstrip('/')}/{dbver}/{name}"
            if path.is_file():
                logger.info("using cached %s", path)
            else:
                logger.info("downloading %s", url)
                try:
                    sets = Msigdb.get_gmt(category=cat, dbver=dbver)
                except Exception as err:  # requests' connection errors and friends
                    raise InputError(
                        f"could not download {url}: {err}", "check the network or use --hallmark/--go files"
                    ) from None
                if not sets:
                    raise InputError(
                        f"MSigDB has no {name} (HTTP error at {url})",
                        "check the release name at https://data.broadinstitute.org/gsea-msigdb/msigdb/release/",
                    )
                tmp = path.with_suffix(".part")
                write_gmt(tmp, [GeneSet(cat, n, tuple(g), f"msigdb:{dbver}") for n, g in sets.items()])
                tmp.replace(path)
            out.append({"category": cat, "path": path, "url": url})
            bar.step("MSigDB %s ready (%d/%d)", cat, len(out), len(categories))
    finally:
        Msigdb.url = old
        bar.close()
    return out


def go_urls(release: str, base_url: str | None = None) -> dict[str, str]:
    """URLs of go-basic.obo and the human GAF for ``current`` or a dated release (YYYY-MM-DD).

    ``base_url`` (``Settings.go_url``, ``$GPC_BENCH_GO_URL``: a mirror laid out like
    release.geneontology.org, with ``{release}`` in it) replaces the default servers.
    """
    if release == "current" and base_url is None:
        return {"obo": GO_CURRENT_OBO, "gaf": GO_CURRENT_GAF}
    if release != "current" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", release):
        raise InputError(
            f"--go-release {release!r} is not 'current' or a date", "for example current or 2024-01-17"
        )
    base = (base_url or GO_RELEASE_URL).format(release=release).rstrip("/")
    return {"obo": f"{base}/ontology/go-basic.obo", "gaf": f"{base}/annotations/goa_human.gaf.gz"}


def fetch_go(release: str = "current", *, settings: Settings) -> dict:
    """Download go-basic.obo and goa_human.gaf with goatools' downloader (cached).

    Returns ``{"obo": path, "annotations": path, "urls": {...}}``.  ``current`` is cached like a
    dated release: delete the cache folder to refresh it; the OBO's data-version is recorded in
    the manifest either way.
    """
    urls = go_urls(release, settings.go_url)
    folder = settings.resolved_cache_dir() / "go" / release
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"obo": folder / "go-basic.obo", "annotations": folder / "goa_human.gaf"}
    with Progress(2, "GO downloads", logger) as bar:
        for key, url in (("obo", urls["obo"]), ("annotations", urls["gaf"])):
            _fetch_go_file(paths[key], url, bar)
    return {**paths, "urls": urls}


def _fetch_go_file(path: Path, url: str, bar: Progress) -> None:
    from goatools.base import dnld_file

    if path.is_file():
        bar.step("using cached %s", path)
        return
    logger.info("downloading %s", url)
    quiet = io.StringIO()
    try:  # goatools prints progress and calls sys.exit(1) on a failed download
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            dnld_file(url, str(path), prt=None)
    except SystemExit:
        raise InputError(f"could not download {url}", "check the network or the --go-release date") from None
    bar.step("downloaded %s", path.name)
