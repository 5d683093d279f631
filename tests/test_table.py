"""Result tables: numpy columns written by Arrow, read back by pandas, pyarrow and the csv module."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from gpc_bench._table import Categorical, NullableInt, Table, categorical, levels


@pytest.fixture
def table() -> Table:
    rng = np.random.default_rng(3)
    n = 257
    return Table(
        {
            "sample_id": categorical(rng.integers(0, 3, n), ["B2", "A1", "Ä-3"]),
            "gene": np.array([f"G{i}" for i in rng.integers(0, 50, n)], dtype=object),
            "symbol": np.where(rng.random(n) < 0.2, "", "TP53"),  # a unicode array, empty strings
            "r": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "tiny": rng.normal(size=n) * 1e-300,
            "n": rng.integers(-5, 10**12, n),
            "ok": rng.random(n) < 0.5,
            "level": levels(rng.integers(0, 4, n)),
        }
    )


def _reference(t: Table) -> dict[str, list]:
    """The same table built value by value in plain Python (the obviously-correct view)."""
    cols = {}
    for name, c in t.columns.items():
        if isinstance(c, Categorical):
            cols[name] = [None if k < 0 else c.categories[k] for k in c.codes.tolist()]
        elif isinstance(c, NullableInt):
            pairs = zip(c.values.tolist(), c.missing.tolist(), strict=True)
            cols[name] = [None if m else v for v, m in pairs]
        else:
            cols[name] = c.tolist()
    return cols


def test_pandas_view_has_the_values_and_dtypes(table):
    df = table.to_pandas()
    ref = _reference(table)
    assert isinstance(df["sample_id"].dtype, pd.CategoricalDtype)
    assert df["level"].dtype == "Int64" and df["symbol"].dtype == object
    assert df["sample_id"].astype(object).tolist() == ref["sample_id"]
    assert df["level"].astype(object).where(df["level"].notna(), None).tolist() == ref["level"]
    for c in ("gene", "symbol", "n", "ok"):
        assert df[c].tolist() == ref[c], c
    np.testing.assert_array_equal(df["r"].to_numpy(), ref["r"])


def test_csv_round_trips_every_value(table, tmp_path):
    table.write_csv(tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "sample_id,gene,symbol,r,tiny,n,ok,level"
    assert '"' not in text  # nothing needed quoting
    rows = list(csv.reader(text.splitlines()[1:]))
    ref = _reference(table)
    assert [r[0] for r in rows] == ref["sample_id"]
    assert [r[2] for r in rows] == ref["symbol"]
    # floats in a form that reads back to the same double; NaN and missing as empty fields
    for j, name in ((3, "r"), (4, "tiny")):
        back = np.array([float(r[j]) if r[j] else np.nan for r in rows])
        np.testing.assert_array_equal(back, np.array(ref[name], dtype=float))
    assert [int(r[5]) for r in rows] == ref["n"]
    assert [r[6] for r in rows] == ["true" if v else "false" for v in ref["ok"]]
    assert [r[7] for r in rows] == ["" if v is None else str(v) for v in ref["level"]]
    back = pd.read_csv(tmp_path / "t.csv", keep_default_na=True)
    assert back["ok"].dtype == bool and back["ok"].tolist() == ref["ok"]


def test_csv_quotes_strings_only_when_a_value_needs_it(tmp_path):
    plain = Table({"pathway": np.array(["A", "B"], dtype=object), "x": np.array([1.0, 2.0])})
    plain.write_csv(tmp_path / "plain.csv")
    assert (tmp_path / "plain.csv").read_text() == "pathway,x\nA,1\nB,2\n"
    odd = Table({"pathway": np.array(["with, comma", 'a "quote"'], dtype=object), "x": np.array([1.0, 2.0])})
    odd.write_csv(tmp_path / "odd.csv")
    assert (tmp_path / "odd.csv").read_text() == 'pathway,x\n"with, comma",1\n"a ""quote""",2\n'
    assert list(csv.reader((tmp_path / "odd.csv").open()))[1:] == [["with, comma", "1"], ['a "quote"', "2"]]


def test_parquet_has_plain_types_and_the_values(table, tmp_path):
    table.write_parquet(tmp_path / "t.parquet")
    assert pq.read_schema(tmp_path / "t.parquet").metadata is None
    back = pd.read_parquet(tmp_path / "t.parquet")
    ref = _reference(table)
    assert back["sample_id"].dtype == object and back["sample_id"].tolist() == ref["sample_id"]
    np.testing.assert_array_equal(back["r"].to_numpy(), np.array(ref["r"]))
    assert back["level"].isna().tolist() == [v is None for v in ref["level"]]


def test_categorical_columns_with_repeats_missing_codes_or_plain_strings(tmp_path):
    codes = np.array([1, -1, 0, 1])
    unique = categorical(codes, ["x", "y"])
    repeated = categorical(codes, ["a", "a"])  # not a valid pandas/Arrow dictionary: decoded
    plain = categorical(codes, ["x", "y"], pandas_category=False)
    t = Table({"u": unique, "r": repeated, "p": plain})
    df = t.to_pandas()
    assert isinstance(df["u"].dtype, pd.CategoricalDtype)
    assert df["r"].dtype == object and df["p"].dtype == object
    as_list = lambda s: s.astype(object).where(s.notna(), None).tolist()  # noqa: E731
    assert as_list(df["u"]) == ["y", None, "x", "y"]
    assert as_list(df["r"]) == ["a", None, "a", "a"]
    assert as_list(df["p"]) == ["y", None, "x", "y"]
    arrow = t.to_arrow()
    assert arrow.column("r").to_pylist() == ["a", None, "a", "a"]
    assert arrow.column("p").to_pylist() == ["y", None, "x", "y"]
    t.write_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "u,r,p\ny,a,y\n,,\nx,a,x\ny,a,y\n"


def test_missing_strings_and_empty_columns(tmp_path):
    t = Table(
        {
            "s": np.array(["a", None, np.nan, ""], dtype=object),  # None and NaN are missing, "" is not
            "c": categorical(np.array([-1, -1, -1, -1]), []),
        }
    )
    assert t.to_arrow().column("s").to_pylist() == ["a", None, None, ""]
    assert t.to_arrow().column("c").to_pylist() == [None] * 4
    empty = Table({"s": np.array([], dtype=object), "x": np.zeros(0)})
    empty.write_csv(tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text() == "s,x\n"
    assert len(pd.read_csv(tmp_path / "e.csv")) == 0


def test_take_reorders_every_kind_and_lengths_are_checked(table):
    order = np.argsort(-np.arange(len(table)))
    flipped = table.take(order).to_pandas()
    pd.testing.assert_frame_equal(flipped, table.to_pandas().iloc[order].reset_index(drop=True))
    with pytest.raises(ValueError, match="differ in length"):
        Table({"a": np.zeros(2), "b": np.zeros(3)})


def test_from_pandas_round_trip(table):
    df = table.to_pandas()
    pd.testing.assert_frame_equal(Table.from_pandas(df).to_pandas(), df)


def test_the_command_line_scores_without_importing_pandas(cohort_files, tmp_path):
    """`gpc-bench score` builds and writes its tables without pandas (0.3-0.4 s of imports)."""
    code = (
        "import sys\n"
        "from gpc_bench.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    print('PANDAS' if 'pandas' in sys.modules else 'NO-PANDAS')\n"
    )
    args = [cohort_files["noisy"], "--truth", cohort_files["truth"], "--pathways", cohort_files["pathways"]]
    out = ["--out", str(tmp_path / "run"), "--no-checksum"]
    cmd = [sys.executable, "-c", code, "score", *map(str, args), *out]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "NO-PANDAS"
    assert (tmp_path / "run" / "pathway_scores.csv").is_file()
