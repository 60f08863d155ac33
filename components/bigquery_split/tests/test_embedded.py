"""The embedded engine on real Parquet and CSV files: every row where pyfarmhash says, the
outputs bigquery_split writes, streaming in batches, and bad input refused with nothing
written."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from kfpkit.components.bigquery_split import embedded, reference
from kfpkit.splitting import data
from kfpkit.testing.gcs import GcsStandIn
from kfpkit.testing.permissions import unprivileged

SAMPLE = Path(__file__).parent / "data" / "employment_sample.parquet"
RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def folders(root: Path, ratios: dict[str, float] = RATIOS) -> dict[str, str]:
    return {name: str(root / "out" / name) for name in ratios}


def split(source: Path | str, root: Path, ratios=RATIOS, **kwargs):
    return embedded.split_files(str(source), kwargs.pop("key_columns", ["id"]), ratios,
                                folders(root, ratios), **kwargs)  # fmt: skip


def read_out(root: Path, name: str) -> pa.Table:
    return pq.read_table(glob.glob(str(root / "out" / name / "data-*.parquet")))


def leftovers(root: Path) -> list[str]:
    return sorted(
        os.path.relpath(p, root)
        for p in glob.glob(str(root / "out" / "**" / "*"), recursive=True)
        + glob.glob(str(root / "out" / "**" / ".*"), recursive=True)
        if os.path.isfile(p)
    )


def test_every_row_lands_where_farmhash_says(tmp_path):
    results = split(SAMPLE, tmp_path, label_column="employed")
    sample = pq.read_table(SAMPLE)
    want: dict[str, set[int]] = {name: set() for name in RATIOS}
    for i in sample.column("id").to_pylist():
        want[reference.split_of(str(i), RATIOS)].add(i)
    assert [r.name for r in results] == ["train", "validation", "test"]
    for r in results:
        out = read_out(tmp_path, r.name)
        assert set(out.column("id").to_pylist()) == want[r.name]
        assert r.row_count == out.num_rows == len(want[r.name])
        assert r.table_id == ""  # no table: the files are the split
        assert r.export_uri == str(tmp_path / "out" / r.name)
        assert out.schema.names == sample.schema.names
        assert [f["name"] for f in r.schema] == sample.schema.names
        assert {f["name"]: f["type"] for f in r.schema}["AGEP"] == "FLOAT"
    assert sum(r.row_count for r in results) == sample.num_rows
    assert leftovers(tmp_path) == [f"out/{n}/data-000000000000.parquet" for n in
                                   ("test", "train", "validation")]  # fmt: skip


def test_batches_csv_and_folders_give_the_same_split(tmp_path, monkeypatch):
    sample = pq.read_table(SAMPLE)
    first = {r.name: r.row_count for r in split(SAMPLE, tmp_path / "a")}
    want = {n: sorted(read_out(tmp_path / "a", n).column("id").to_pylist()) for n in RATIOS}

    # small batches and row groups: many writes per split, rows kept whole
    monkeypatch.setattr(data, "BATCH_ROWS", 97)
    monkeypatch.setattr(embedded, "ROW_GROUP_ROWS", 150)
    folder = tmp_path / "folder"
    (folder / "part=1").mkdir(parents=True)
    pq.write_table(sample.slice(0, 700), folder / "a.parquet")
    pq.write_table(sample.slice(700), folder / "part=1" / "b.parquet")
    (folder / "_SUCCESS").write_text("")
    split(folder, tmp_path / "b")
    csv_file = tmp_path / "sample.csv"
    pcsv.write_csv(sample, csv_file)
    split(csv_file, tmp_path / "c")
    for run in ("b", "c"):
        for n in RATIOS:
            out = read_out(tmp_path / run, n)
            assert sorted(out.column("id").to_pylist()) == want[n], (run, n)
            assert out.num_rows == first[n]
    assert pq.ParquetFile(glob.glob(str(tmp_path / "b/out/train/*.parquet"))[0]).metadata \
        .row_group(0).num_rows <= 150  # fmt: skip


def test_types_become_bigquery_types_and_other_splits(tmp_path):
    table = pa.table({
        "k": pa.array(["a", "b", "c", "d"]).dictionary_encode(),
        "n": pa.array([1, 2, 3, 4], pa.int8()),
        "x": pa.array([0.5, 1.5, 2.5, 3.5], pa.float32()),
        "y": [0, 1, 0, 1],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "t.parquet")
    ratios = {"train": 0.5, "holdout": 0.5}
    results = split(tmp_path / "t.parquet", tmp_path, ratios, key_columns=["k"],
                    label_column="y")  # fmt: skip
    assert [r.name for r in results] == ["train", "holdout"]
    out = pa.concat_tables([read_out(tmp_path, "train"), read_out(tmp_path, "holdout")])
    assert out.schema == pa.schema([("k", pa.string()), ("n", pa.int64()),
                                    ("x", pa.float64()), ("y", pa.int64())])  # fmt: skip
    assert sorted(out.column("k").to_pylist()) == ["a", "b", "c", "d"]
    for r in results:
        assert set(read_out(tmp_path, r.name).column("k").to_pylist()) == {
            k for k in "abcd" if reference.split_of(k, ratios) == r.name
        }


def test_a_rerun_replaces_the_earlier_files(tmp_path):
    split(SAMPLE, tmp_path)
    stale = tmp_path / "out" / "train" / "data-000000000001.parquet"
    pq.write_table(pq.read_table(SAMPLE), stale)  # as if an earlier attempt wrote two files
    killed = tmp_path / "out" / "test" / ".data-000000000000.parquet.partial-99999"
    killed.write_bytes(b"PAR1")  # an attempt killed mid-write (no clean-up ran)
    split(SAMPLE, tmp_path)
    assert not stale.exists() and not killed.exists()
    assert read_out(tmp_path, "train").num_rows < 2000


def write(tmp_path: Path, name: str, table: pa.Table) -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


ROWS = {"id": [1, 2, 3, 4], "y": [0, 1, 1, 0]}


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (lambda d: d / "missing.parquet", {}, r"missing.parquet' does not exist"),
        (lambda d: os.mkfifo(d / "f.parquet") or d / "f.parquet", {},
         r"f.parquet' is neither a file nor a folder"),
        (lambda d: write(d, "e.parquet", pa.table({"id": pa.array([], pa.int64())})), {},
         "has no rows"),
        (lambda d: write(d, "e.csv", pa.table({"id": pa.array([], pa.int64())})), {},
         "has no rows"),
        (lambda d: (d / "empty").mkdir() or d / "empty", {}, "has no Parquet"),
        (lambda d: write(d, "t.parquet", pa.table(ROWS)), {"key_columns": ["cust"]},
         r"key column\(s\) \['cust'\] not in .*its columns are \['id', 'y'\]"),
        (lambda d: write(d, "t.parquet", pa.table(ROWS)), {"label_column": "label"},
         r"label column \['label'\] not in"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1, None, None], "y": [0, 1, 0]})), {},
         r"2 of 3 rows .* NULL in key column\(s\) \['id'\]"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [None, None, None], "y": [0, 1, 0]})),
         {}, r"key column\(s\) \['id'\] of .*t.parquet' are NULL in every row \(3 rows\)"),
        (lambda d: write(d, "t.parquet", pa.table({"id": pa.array([None] * 3, pa.int64()),
                                                   "y": [0, 1, 0]})),
         {}, r"key column\(s\) \['id'\] of .* are NULL in every row \(3 rows\)"),
        (lambda d: write(d, "t.csv", pa.table({"id": pa.array([None, None], pa.string()),
                                               "y": [0, 1]})), {},
         r"key column\(s\) \['id'\] of .*t.csv' are NULL in every row \(2 rows\)"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1, 2], "k": pa.array([None, None],
                                                                             pa.string())})),
         {"key_columns": ["id", "k"]}, r"key column\(s\) \['k'\] of .* NULL in every row"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1, 2, 3], "k": ["a", None, "c"]})),
         {"key_columns": ["id", "k"]},
         r"1 of 3 rows .* NULL in key column\(s\) \['id', 'k'\] \('k' in 1\)"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1.5, 2.5], "y": [0, 1]})), {},
         "key column 'id' has type double"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1, 2], "y": [1, 1]})),
         {"label_column": "y"}, r"label column 'y' .* has one value \(1\) in every row"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1, 2, 3], "y": ["a", "b", "c"]})),
         {"label_column": "y"}, "has a third value 'c'"),
        (lambda d: write(d, "t.parquet", pa.table({"id": [1, 2], "y": [None, None]})),
         {"label_column": "y"}, "is NULL in every row"),
    ],
    ids=["missing-path", "fifo", "no-rows", "no-rows-csv", "no-files", "missing-key",
         "missing-label", "null-keys", "all-null-key", "all-null-int-key", "all-null-csv-key",
         "all-null-second-key", "null-in-second-key", "float-key", "constant-label",
         "third-label", "null-label"],
)  # fmt: skip
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, make, kwargs, message):
    source = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        split(source, tmp_path, **kwargs)
    assert leftovers(tmp_path) == []


def locked(path: Path) -> Path:
    """``path`` with no permission for anyone (root too: see unprivileged)."""
    path.chmod(0)
    return path


def folder_of(d: Path, fmt: str) -> Path:
    """A folder with two data files, a.<fmt> and sub/b.<fmt>."""
    (d / "data" / "sub").mkdir(parents=True)
    write(d / "data", f"a.{fmt}", pa.table(ROWS))
    write(d / "data" / "sub", f"b.{fmt}", pa.table(ROWS))
    return d / "data"


SPLIT_IN_A_CHILD = """
import json, sys
from kfpkit.components.bigquery_split import embedded
embedded.split_files(sys.argv[1], ["id"], json.loads(sys.argv[2]), json.loads(sys.argv[3]), "y")
"""


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        (lambda d: locked(write(d, "t.parquet", pa.table(ROWS))),
         r"{d}/t.parquet cannot be read: .*Permission denied"),
        (lambda d: locked(folder_of(d, "parquet") / "sub") and d / "data",
         r"source '{d}/data' cannot be read: .*'{d}/data/sub'.*Permission denied"),
        (lambda d: locked(folder_of(d, "csv") / "sub" / "b.csv") and d / "data",
         r"{d}/data/sub/b.csv cannot be read: .*Permission denied"),
    ],
    ids=["file", "subfolder", "second-csv-file"],
)  # fmt: skip
def test_an_unreadable_path_is_named_and_nothing_is_written(tmp_path, lock, message):
    """The split as a process that file permissions stop (root's override dropped)."""
    source = lock(tmp_path)
    command = unprivileged([sys.executable, "-c", SPLIT_IN_A_CHILD, str(source),
                            json.dumps(RATIOS), json.dumps(folders(tmp_path))])  # fmt: skip
    if command is None:
        pytest.skip("root without setpriv: a file of mode 000 is readable")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch("ValueError: " + message.format(d=re.escape(str(tmp_path))) + ".*",
                        error), error  # fmt: skip
    assert leftovers(tmp_path) == []


def sample_in_a_bucket(tmp_path: Path) -> Path:
    """The sample as two files, gs://bucket/data/a.parquet and .../sub/b.parquet."""
    folder = tmp_path / "gcs" / "bucket" / "data"
    (folder / "sub").mkdir(parents=True)
    sample = pq.read_table(SAMPLE)
    pq.write_table(sample.slice(0, 700), folder / "a.parquet")
    pq.write_table(sample.slice(700), folder / "sub" / "b.parquet")
    return folder


@contextlib.contextmanager
def bucket_served(tmp_path: Path, monkeypatch, forbidden=()):  # type: ignore[no-untyped-def]
    """tmp_path/gcs served as gs:// by the stand-in, pyarrow's GCS client pointed at it."""
    with GcsStandIn(tmp_path / "gcs", forbidden) as gcs:
        for name, value in gcs.environment(tmp_path).items():
            monkeypatch.setenv(name, value)
        yield


def test_a_gs_source_splits_as_its_local_copy(tmp_path, monkeypatch):
    """gs:// through pyarrow's GCS filesystem (google-cloud-cpp) against a stand-in."""
    local = sample_in_a_bucket(tmp_path)
    split(local, tmp_path / "local", label_column="employed")
    with bucket_served(tmp_path, monkeypatch):
        results = split("gs://bucket/data", tmp_path / "gs", label_column="employed")
    assert sum(r.row_count for r in results) == 2000
    for r in results:
        ids = read_out(tmp_path / "gs", r.name).column("id").to_pylist()
        assert sorted(ids) == sorted(read_out(tmp_path / "local", r.name).column("id").to_pylist())
        assert r.row_count == len(ids)


def test_a_gs_object_the_credentials_cannot_read_is_named(tmp_path, monkeypatch):
    sample_in_a_bucket(tmp_path)
    message = r"^gs://bucket/data/sub/b.parquet cannot be read: .*PERMISSION_DENIED"
    with (
        bucket_served(tmp_path, monkeypatch, forbidden=["bucket/data/sub/b.parquet"]),
        pytest.raises(ValueError, match=message),
    ):
        split("gs://bucket/data", tmp_path)
    assert leftovers(tmp_path) == []


def test_a_ragged_csv_line_is_named(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,y\n1,0\n2,1,extra\n3,0\n")
    with pytest.raises(ValueError, match=r"ragged.csv.*Expected 2 columns, got 3"):
        split(path, tmp_path)
    assert leftovers(tmp_path) == []


def test_files_that_disagree_on_a_type_are_both_named(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "v": [1, 2]}), folder / "a.parquet")
    pq.write_table(pa.table({"id": [3, 4], "v": ["x", "y"]}), folder / "b.parquet")
    with pytest.raises(ValueError, match=r"column 'v' is int64 in .*a.parquet but string in "
                                         r".*b.parquet"):  # fmt: skip
        split(folder, tmp_path)
    (folder / "c.csv").write_text("id\n1\n")
    with pytest.raises(ValueError, match="mixes Parquet and CSV"):
        split(folder, tmp_path)
    assert leftovers(tmp_path) == []


def test_a_failure_mid_stream_leaves_nothing(tmp_path, monkeypatch):
    """A value that does not fit the CSV's inferred type, met after rows were written."""
    monkeypatch.setattr(embedded, "ROW_GROUP_ROWS", 10)
    monkeypatch.setattr(data, "CSV_INFERENCE_BYTES", 64)
    lines = ["id,y"] + [f"{i},{i % 2}" for i in range(200)] + ["oops,1"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"late.csv.*oops"):
        embedded.split_files(str(path), ["id"], RATIOS, folders(tmp_path))
    assert leftovers(tmp_path) == []
