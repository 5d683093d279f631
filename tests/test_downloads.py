"""--msigdb-release and --go-release, served by a local HTTP server (never the internet).

The fixture files are tiny, hand-written GMT / OBO / GAF files; the expected GO sets after
true-path propagation are worked out by hand below.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import threading

import pytest
from click.testing import CliRunner

from gpc_bench import InputError, curate
from gpc_bench.cli import main

OBO = """format-version: 1.2
data-version: releases/2024-01-17

[Term]
id: GO:0000001
name: root process
namespace: biological_process

[Term]
id: GO:0000002
name: child process one
namespace: biological_process
is_a: GO:0000001 ! root process

[Term]
id: GO:0000003
name: child process, two
namespace: biological_process
relationship: part_of GO:0000001 ! root process

[Term]
id: GO:0000010
name: some location
namespace: cellular_component

[Term]
id: GO:0000020
name: some function
namespace: molecular_function
"""


def _gaf_line(symbol, go, evidence="IDA", qualifier="involved_in", aspect="P"):
    cols = [
        "UniProtKB",
        f"P{symbol}",
        symbol,
        qualifier,
        go,
        "PMID:1",
        evidence,
        "",
        aspect,
        f"{symbol} protein",
        "",
        "protein",
        "taxon:9606",
        "20240101",
        "UniProt",
        "",
        "",
    ]
    return "\t".join(cols)


def _gaf(extra=()):
    lines = ["!gaf-version: 2.2", "!date-generated: 2024-01-17", "!generated-by: gpc-bench tests"]
    lines += [_gaf_line(f"G{i}", "GO:0000002") for i in range(1, 5)]  # G1-G4 in child one
    lines += [_gaf_line(f"G{i}", "GO:0000003") for i in range(4, 8)]  # G4-G7 in child two
    lines += [_gaf_line("G9", "GO:0000001", evidence="ND")]  # dropped: ND
    lines += [_gaf_line("G8", "GO:0000002", qualifier="NOT|involved_in")]  # dropped: NOT
    lines += [_gaf_line(f"G{i}", "GO:0000010", qualifier="located_in", aspect="C") for i in (1, 2, 3)]
    lines += [_gaf_line(f"G{i}", "GO:0000020", qualifier="enables", aspect="F") for i in (5, 6)]
    lines += list(extra)
    return "\n".join(lines) + "\n"


def _gmt(sets):
    return "".join(f"{n}\tdesc\t" + "\t".join(g) + "\n" for n, g in sets.items())


HALLMARK = {"HALLMARK_A": ["G1", "G2", "G3"], "HALLMARK_B": ["G4", "G5"]}
C5GO = {"GOBP_X": ["G1", "G2", "G3", "G4"], "GOBP_Y": ["G1", "G2", "G3", "G5"], "GOCC_Z": ["G7", "G8", "G9"]}


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """A local HTTP server with an MSigDB release and two GO releases (one mismatched)."""
    root = tmp_path / "www"
    ms = root / "msigdb" / "2025.1.Hs"
    ms.mkdir(parents=True)
    (ms / "h.all.v2025.1.Hs.symbols.gmt").write_text(_gmt(HALLMARK))
    (ms / "c5.go.v2025.1.Hs.symbols.gmt").write_text(_gmt(C5GO))
    for release, gaf in (
        ("2024-01-17", _gaf()),
        ("2030-01-01", _gaf([_gaf_line("G1", "GO:0999999")])),  # annotated to a term the OBO lacks
    ):
        (root / release / "ontology").mkdir(parents=True)
        (root / release / "annotations").mkdir(parents=True)
        (root / release / "ontology" / "go-basic.obo").write_text(OBO)
        (root / release / "annotations" / "goa_human.gaf.gz").write_bytes(gzip.compress(gaf.encode()))
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("GPC_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GPC_BENCH_MSIGDB_URL", f"{base}/msigdb/")
    monkeypatch.setenv("GPC_BENCH_GO_URL", base + "/{release}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    handler.func.log = []
    yield base, handler.func.log
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    log: list[str] = []

    def log_message(self, fmt, *args):
        type(self).log.append(self.path)


def test_msigdb_release_downloads_and_caches(server, tmp_path):
    base, log = server
    res = curate(msigdb_release="2025.1", min_size=3, max_size=4, jaccard=0.5)
    assert [s.name for s in res.hallmark] == ["HALLMARK_A", "HALLMARK_B"]
    # X and Y: J = 3/5 = 0.6 > 0.5 -> Y (tie on size, later by name) removed; Z has 3 genes
    assert [s.name for s in res.go] == ["GOBP_X", "GOCC_Z"]
    srcs = {s["file"]: s for s in res.manifest["sources"]}
    hall = srcs["h.all.v2025.1.Hs.symbols.gmt"]
    assert hall["url"] == f"{base}/msigdb/2025.1.Hs/h.all.v2025.1.Hs.symbols.gmt"
    assert hall["release"] == "2025.1.Hs"
    assert (tmp_path / "cache" / "msigdb" / "2025.1.Hs" / "c5.go.v2025.1.Hs.symbols.gmt").is_file()
    n = len(log)
    again = curate(msigdb_release="2025.1", min_size=3, max_size=4, jaccard=0.5)
    assert len(log) == n, "the second run must use the cache"
    assert again.manifest["collection_id"] == res.manifest["collection_id"]


def test_msigdb_unknown_release_is_a_clear_error(server):
    with pytest.raises(InputError, match="MSigDB has no h.all.v2031.1.Hs.symbols.gmt"):
        curate(msigdb_release="2031.1")
    with pytest.raises(InputError, match="not an MSigDB release"):
        curate(msigdb_release="latest")


def test_go_release_download_and_propagation(server):
    base, _ = server
    res = curate(go_release="2024-01-17", min_size=2, max_size=10, jaccard=1.0)
    got = {s.name: set(s.genes) for s in res.go}
    # propagation: root = child one (is_a) + child two (part_of); ND and NOT rows dropped
    assert got == {
        "GOBP_ROOT_PROCESS": {f"G{i}" for i in range(1, 8)},
        "GOBP_CHILD_PROCESS_ONE": {"G1", "G2", "G3", "G4"},
        "GOBP_CHILD_PROCESS_TWO": {"G4", "G5", "G6", "G7"},
        "GOCC_SOME_LOCATION": {"G1", "G2", "G3"},
        "GOMF_SOME_FUNCTION": {"G5", "G6"},
    }
    assert {s.description for s in res.go} >= {"GO:0000001", "GO:0000010"}
    srcs = {s["kind"]: s for s in res.manifest["sources"]}
    assert srcs["go_obo"]["release"] == "releases/2024-01-17"
    assert srcs["go_obo"]["url"] == f"{base}/2024-01-17/ontology/go-basic.obo"
    assert srcs["gaf"]["url"] == f"{base}/2024-01-17/annotations/goa_human.gaf.gz"
    assert srcs["gaf"]["release"] == "2024-01-17"


def test_go_version_mismatch_is_refused(server):
    with pytest.raises(InputError, match="different GO releases") as err:
        curate(go_release="2030-01-01", min_size=2, max_size=10)
    assert "GO:0999999" in str(err.value)


def test_go_download_failure_is_clear(server):
    with pytest.raises(InputError, match="could not download .*1999-01-01/ontology/go-basic.obo"):
        curate(go_release="1999-01-01")


def test_curate_cli_with_release(server, tmp_path):
    out = tmp_path / "coll"
    res = CliRunner().invoke(
        main,
        [
            "-q",
            "curate",
            "--msigdb-release",
            "2025.1",
            "--min-size",
            "3",
            "--max-size",
            "4",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(s["url"].startswith(server[0]) for s in manifest["sources"])
