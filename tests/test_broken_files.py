"""Every broken file is refused with a message that names the file and the problem (no traceback)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from gpc_bench import InputError
from gpc_bench.baselines.adapters import convert

GENES = ["G00000", "G00001", "G00002"]


@pytest.fixture()
def side(tmp_path):
    (tmp_path / "genes.json").write_text(json.dumps({"genes": GENES}))
    (tmp_path / "samples.csv").write_text("sample_id,n_spots\nA,2\nB,2\n")
    return tmp_path


def _dump(n=4):
    rng = np.random.default_rng(0)
    return {"preds_all": rng.random((n, 3)), "targets_all": rng.random((n, 3))}


def _torch():
    return pytest.importorskip("torch", reason="torch files need the [model] extra")


def _case(name, tmp_path):
    """Write the broken file of case ``name``; return (format, path, extra convert options)."""
    p = tmp_path / name
    stflow = {"samples": tmp_path / "samples.csv", "genes": tmp_path / "genes.json"}
    if name == "truncated.pkl":
        p.write_bytes(pickle.dumps(_dump())[:40])
    elif name == "text.pkl":
        p.write_text("preds_all,targets_all\n1,2\n")
    elif name == "objects.npz":
        np.savez(p, preds_all=np.array([{"a": 1}] * 4, dtype=object), targets_all=np.zeros((4, 3)))
    elif name == "notzip.npz":
        p.write_bytes(b"this is not a zip archive at all")
    elif name == "list.pt":
        torch = _torch()
        torch.save([torch.zeros(4, 3)], p)
    elif name == "truncated.pt":
        torch = _torch()
        torch.save({k: torch.from_numpy(v) for k, v in _dump().items()}, p)
        p.write_bytes(p.read_bytes()[:100])
    elif name == "badgenes.pkl":
        p.write_bytes(pickle.dumps(_dump()))
        (tmp_path / "bad.json").write_text('{"genes": ["G00000", ')
        stflow = stflow | {"genes": tmp_path / "bad.json"}
    elif name == "nokeys.pkl":
        p.write_bytes(pickle.dumps({"preds": np.zeros((4, 3))}))
    elif name == "badsamples.pkl":
        p.write_bytes(pickle.dumps(_dump()))
        (tmp_path / "s2.csv").write_bytes(b"\x00\xff\xfe garbage")
        stflow = stflow | {"samples": tmp_path / "s2.csv"}
    elif name == "stem_list.pt":
        torch = _torch()
        torch.save([torch.zeros(4, 1, 3)], p)
        return "stem", p, {"slide": tmp_path / "slide.h5ad", "genes": tmp_path / "genes.json", "n_draws": 2}
    elif name == "stem_truncated.pt":
        torch = _torch()
        torch.save(torch.zeros(4, 1, 3), p)
        p.write_bytes(p.read_bytes()[:64])
        return "stem", p, {"slide": tmp_path / "slide.h5ad", "genes": tmp_path / "genes.json", "n_draws": 2}
    elif name == "results_dict.pth":
        torch = _torch()
        torch.save({"a": torch.zeros(2)}, p)
        return "stpath-results", p, {}
    elif name == "results_text.pth":
        p.write_text("not a torch file")
        return "stpath-results", p, {}
    elif name == "predicted_genes.csv":
        p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 binary")
        return "histoprism", p, {"truth": None}
    elif name == "empty.csv":
        p.write_text("")
        return "histoprism", p, {}
    elif name == "pred_A.h5ad":
        (tmp_path / "h5").mkdir()
        (tmp_path / "h5" / "pred_A.h5ad").write_bytes(b"HDF5? no")
        return "stpath-h5ad", tmp_path / "h5", {}
    return "stflow", p, stflow


CASES = ["truncated.pkl", "text.pkl", "objects.npz", "notzip.npz", "list.pt", "truncated.pt", "badgenes.pkl",
         "nokeys.pkl", "badsamples.pkl", "stem_list.pt", "stem_truncated.pt", "results_dict.pth",
         "results_text.pth", "predicted_genes.csv", "empty.csv", "pred_A.h5ad"]  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_a_broken_file_is_refused_with_its_name(side, name):
    fmt, path, opts = _case(name, side)
    with pytest.raises(InputError) as err:
        convert(fmt, path, **opts)
    msg = str(err.value)
    named = [path.name, *(str(v.name) for v in opts.values() if hasattr(v, "name"))]
    assert any(n in msg for n in named), msg
    assert "weights_only=False" not in msg and "Traceback" not in msg


@pytest.mark.parametrize(
    "bad", ['{"pearson_corrs": [{"name": "A", "pearson_corr": 0.1}', "[1, 2]", '{"x": 1}']
)
def test_a_broken_gene_pcc_file_is_refused(tmp_path, bad):
    from gpc_bench.baselines.adapters.gene_pcc import read_gene_pcc

    (tmp_path / "S1_results.json").write_text(bad)
    with pytest.raises(InputError, match="S1_results.json"):
        read_gene_pcc(tmp_path)
