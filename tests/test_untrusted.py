"""Untrusted pickles and torch files yield plain data only: nothing they name may touch a file."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest

from gpc_bench import InputError
from gpc_bench.io import safeload

torch = pytest.importorskip("torch", reason="torch files need the [model] extra")


def _file_manager_payload(target):
    """The exact attack: only allow-listed classes, but unpickling calls
    ``AnnDataFileManager(AnnData(), target, "w")``, which opens (and empties) ``target``."""
    import anndata as ad
    from anndata._core.file_backing import AnnDataFileManager

    class Payload:
        def __reduce__(self):
            return (AnnDataFileManager, (ad.AnnData(), str(target), "w"))

    return Payload()


def _stpath_list(n_wsi=2, n_spots=5, n_genes=4, seed=0):
    import anndata as ad

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_wsi):
        a = ad.AnnData(
            rng.random((n_spots, n_genes)).astype(np.float32),
            var=pd.DataFrame(index=[f"G{j}" for j in range(n_genes)]),
        )
        a.layers["groundtruth"] = rng.random((n_spots, n_genes)).astype(np.float32)
        a.uns["sample_id"] = f"S{k}"
        out.append(a)
    return out


@pytest.mark.parametrize("existing", [True, False])
def test_file_manager_payload_writes_nothing(tmp_path, existing):
    from gpc_bench.baselines.adapters import formats

    victim = tmp_path / "victim.h5ad"
    if existing:
        victim.write_bytes(b"precious data")
    torch.save([_file_manager_payload(victim)], tmp_path / "results.pth")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputError, match="expected an AnnData"):
        formats.stpath_results(tmp_path / "results.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if existing:
        assert victim.read_bytes() == b"precious data"
    else:
        assert not victim.exists()


def test_payload_inside_a_real_anndata_is_inert(tmp_path):
    """The payload hidden in uns of an otherwise valid AnnData: the AnnData is rebuilt, the
    payload stays a record, and the file is untouched."""
    from gpc_bench.baselines.adapters import formats

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    objs = _stpath_list()
    objs[0].uns["extra"] = _file_manager_payload(victim)
    torch.save(objs, tmp_path / "results.pth")
    conv = formats.stpath_results(tmp_path / "results.pth")
    assert victim.read_text() == "keep"
    assert conv.adata.n_obs == 10 and conv.adata.n_vars == 4
    np.testing.assert_array_equal(conv.adata.X[:5], objs[0].X)
    np.testing.assert_array_equal(conv.adata.layers["truth"][5:], objs[1].layers["groundtruth"])


def test_code_execution_refused_and_named(tmp_path):
    from gpc_bench.baselines.adapters import formats

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save([Evil()], tmp_path / "evil.pth")
    with pytest.raises(InputError, match="refusing to load .*system"):
        formats.stpath_results(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"preds_all": Evil()}, f)
    with pytest.raises(InputError, match="refusing to load .*system"):
        safeload.load_pickle(tmp_path / "evil.pkl", "a test dict")
    assert not (tmp_path / "pwned").exists()


def _as_numpy1(src, dst):
    """Rewrite a torch.save'd file as numpy < 2 writes it (``numpy.core.multiarray``), the way
    STPath's pinned environment does: GLOBAL opcodes of protocol 2 name the module in text."""
    with zipfile.ZipFile(src) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    key = next(k for k in members if k.endswith("data.pkl"))
    assert b"numpy._core.multiarray" in members[key]
    members[key] = members[key].replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for k, v in members.items():
            z.writestr(k, v)


def test_numpy1_results_pth_loads(tmp_path):
    from gpc_bench.baselines.adapters import formats

    objs = _stpath_list()
    torch.save(objs, tmp_path / "new.pth")
    _as_numpy1(tmp_path / "new.pth", tmp_path / "old.pth")
    a = formats.stpath_results(tmp_path / "new.pth").adata
    b = formats.stpath_results(tmp_path / "old.pth").adata
    np.testing.assert_array_equal(np.asarray(a.X), np.asarray(b.X))
    np.testing.assert_array_equal(a.layers["truth"], b.layers["truth"])


def test_sparse_layers_rebuilt(tmp_path):
    import scipy.sparse as sp

    from gpc_bench.baselines.adapters import formats

    objs = _stpath_list()
    for a in objs:
        a.layers["groundtruth"] = sp.csr_matrix(a.layers["groundtruth"])
    torch.save(objs, tmp_path / "r.pth")
    conv = formats.stpath_results(tmp_path / "r.pth")
    np.testing.assert_allclose(conv.adata.layers["truth"][:5], objs[0].layers["groundtruth"].toarray())


@pytest.mark.parametrize(
    "content",
    [b"", b"not a pickle at all\n", pickle.dumps({"a": 1})[:7], b"PK\x03\x04garbage"],
    ids=["empty", "text", "truncated", "broken-zip"],
)
def test_broken_files_are_clean_errors(tmp_path, content):
    from gpc_bench.baselines.adapters import formats

    (tmp_path / "r.pth").write_bytes(content)
    with pytest.raises(InputError, match="r.pth"):
        formats.stpath_results(tmp_path / "r.pth")
    (tmp_path / "d.pkl").write_bytes(content)
    with pytest.raises(InputError, match="d.pkl"):
        safeload.load_pickle(tmp_path / "d.pkl", "a test dict")


def test_stflow_pt_of_numpy_arrays_and_pickles(tmp_path):
    p = tmp_path / "d.pt"
    torch.save({"preds_all": np.ones((2, 3)), "targets_all": np.zeros((2, 3))}, p)
    d = safeload.load_torch(p, "a test dict")
    assert d["preds_all"].shape == (2, 3)
    buf = io.BytesIO()
    pickle.dump({"preds_all": np.arange(6.0).reshape(2, 3)}, buf, protocol=5)
    (tmp_path / "d.pkl").write_bytes(buf.getvalue())
    np.testing.assert_array_equal(
        safeload.load_pickle(tmp_path / "d.pkl", "t")["preds_all"], np.arange(6.0).reshape(2, 3)
    )


def test_checkpoint_with_code_refused(tmp_path):
    from gpc_bench.baselines.histoprism.train import load_checkpoint

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"format": "x", "payload": Evil()}, tmp_path / "c.pt")
    with pytest.raises(InputError, match="c.pt"):
        load_checkpoint(tmp_path / "c.pt")
    assert not (tmp_path / "pwned").exists()
