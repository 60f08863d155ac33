"""tfdv_statistics on real files with real TFDV: Parquet and CSV, slices, Beam workers, errors."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from kfpkit import testing
from kfpkit.components.tfdv_statistics import launcher
from kfpkit.runtime import executor
from kfpkit.testing import tfdv as tfdv_testing
from kfpkit.tfdv import artifacts
from kfpkit.tfdv.data_files import find_data_files
from kfpkit.tfdv.statistics import compute_statistics, runs_remotely

OUTPUTS = {"statistics": "system.Artifact", "report": "system.HTML"}


def feature(stats, name):
    return next(f for f in stats.datasets[0].features if f.path.step == [name])


def test_parquet_statistics_match_the_data(tmp_path):
    table = tfdv_testing.sample()
    data = tfdv_testing.write_parquet(table, tmp_path / "data", parts=3)
    files = find_data_files(str(data))
    assert files.rows == table.num_rows and len(files.paths) == 3
    stats = compute_statistics(files, str(tmp_path / "stats.pb"))
    ds = stats.datasets[0]
    assert ds.num_examples == table.num_rows
    assert {".".join(f.path.step) for f in ds.features} == set(table.column_names)
    agep = feature(stats, "AGEP")
    assert agep.type == statistics_pb2.FeatureNameStatistics.FLOAT
    assert agep.num_stats.mean == pytest.approx(np.mean(table["AGEP"].to_numpy()), rel=1e-9)
    assert agep.num_stats.max == pc.max(table["AGEP"]).as_py()
    sex = feature(stats, "SEX")
    assert sex.type == statistics_pb2.FeatureNameStatistics.STRING
    counts = Counter(table["SEX"].to_pylist())
    assert {v.value: v.frequency for v in sex.string_stats.top_values} == {
        k: float(c) for k, c in counts.items()
    }
    assert feature(stats, "year").type == statistics_pb2.FeatureNameStatistics.INT


def test_in_process_statistics_equal_the_beam_pipelines(tmp_path):
    """Parquet without slices or Beam arguments skips Beam; the result must not change."""
    table = tfdv_testing.sample()
    agep = table["AGEP"].to_pylist()
    agep[:9] = [None] * 9  # missing values take the same path
    table = table.set_column(table.schema.get_field_index("AGEP"), "AGEP", pa.array(agep))
    files = find_data_files(str(tfdv_testing.write_parquet(table, tmp_path / "data", parts=3)))
    in_process = compute_statistics(files, str(tmp_path / "a.pb"))
    beam = compute_statistics(files, str(tmp_path / "b.pb"), beam_args=["--direct_num_workers=1"])
    assert len(in_process.datasets) == len(beam.datasets) == 1
    assert in_process.datasets[0].num_examples == beam.datasets[0].num_examples == table.num_rows
    ours = {".".join(f.path.step): f for f in in_process.datasets[0].features}
    theirs = {".".join(f.path.step): f for f in beam.datasets[0].features}
    assert ours.keys() == theirs.keys()
    for name, f in theirs.items():
        g = ours[name]
        assert g.type == f.type, name
        if f.HasField("num_stats"):
            assert g.num_stats.mean == pytest.approx(f.num_stats.mean), name
            assert g.num_stats.common_stats.num_missing == f.num_stats.common_stats.num_missing
            assert g.num_stats.min == f.num_stats.min and g.num_stats.max == f.num_stats.max
        else:
            assert g.string_stats.unique == f.string_stats.unique, name
            assert [v.value for v in g.string_stats.top_values] == [
                v.value for v in f.string_stats.top_values
            ], name


def test_missing_values_are_counted_as_missing(tmp_path):
    table = tfdv_testing.sample().slice(0, 100)
    agep = table["AGEP"].to_pylist()
    agep[:7] = [None] * 7
    table = table.set_column(table.schema.get_field_index("AGEP"), "AGEP", pa.array(agep))
    stats = tfdv_testing.statistics_of(table, tmp_path)
    common = feature(stats, "AGEP").num_stats.common_stats
    assert (common.num_missing, common.num_non_missing) == (7, 93)


def test_csv_gives_the_same_statistics_as_parquet(tmp_path):
    table = tfdv_testing.sample().select(["id", "AGEP", "SEX", "year"])
    pacsv.write_csv(table, tmp_path / "data.csv")
    from_csv = compute_statistics(find_data_files(str(tmp_path / "data.csv")), str(tmp_path / "s"))
    from_parquet = tfdv_testing.statistics_of(table, tmp_path / "pq")
    for name in ("AGEP", "year"):
        assert feature(from_csv, name).num_stats.mean == pytest.approx(
            feature(from_parquet, name).num_stats.mean
        )
    assert from_csv.datasets[0].num_examples == table.num_rows


def test_slices_by_feature_value(tmp_path):
    table = tfdv_testing.sample()
    stats = tfdv_testing.statistics_of(table, tmp_path, slice_features=["SEX"])
    by_name = {d.name: d.num_examples for d in stats.datasets}
    assert by_name[tfdv.constants.DEFAULT_SLICE_KEY] == table.num_rows
    sex_slices = {k: v for k, v in by_name.items() if k.startswith("SEX_")}
    assert len(sex_slices) == 2 and sum(sex_slices.values()) == table.num_rows


def test_beam_workers_give_the_same_statistics(tmp_path):
    table = tfdv_testing.sample()
    one = tfdv_testing.statistics_of(table, tmp_path / "one")
    two = tfdv_testing.statistics_of(
        table,
        tmp_path / "two",
        beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_threading"],
    )
    for name in ("AGEP", "year", "id"):
        assert feature(two, name).num_stats.mean == pytest.approx(feature(one, name).num_stats.mean)
    assert two.datasets[0].num_examples == one.datasets[0].num_examples


def test_dataflow_runner_is_told_apart_from_local():
    assert runs_remotely(["--runner=DataflowRunner", "--project=p"])
    assert runs_remotely(["--runner", "DataflowRunner"])  # Beam's own parser: both forms
    assert runs_remotely(["--runner=dataflow"])
    assert not runs_remotely(["--direct_num_workers=2"])


def _mixed(d):
    (d / "a.csv").write_text("a\n1\n")
    pq.write_table(pa.table({"a": [1]}), d / "b.parquet")
    return d


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d, "no .parquet or .csv files"),
        (lambda d: d / "missing", "does not exist"),
        (lambda d: ((d / "data-0.parquet").write_bytes(b"PAR1 not really"), d)[1],
         "not a readable"),
        (lambda d: pq.write_table(pa.table({"a": pa.array([], pa.int64())}), d / "e.parquet") or d,
         "no rows"),
        (lambda d: ((d / "e.csv").write_text(""), d)[1], "empty CSV"),
        (lambda d: ((d / "h.csv").write_text("a,b\n"), d)[1], "no rows"),
        (_mixed, "only Parquet or only CSV"),
    ],
)  # fmt: skip
def test_bad_input_files_are_named(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ValueError, match=message) as err:
        find_data_files(str(path), "data")
    assert str(tmp_path) in str(err.value)


def test_unknown_slice_feature_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"slice_features \['nope'\]"):
        tfdv_testing.statistics_of(
            tfdv_testing.sample().slice(0, 10), tmp_path, slice_features=["nope"]
        )


def run_launcher(tmp_path, data_uri, params=None):
    doc = testing.executor_input(
        tmp_path / "out", params or {}, OUTPUTS, inputs={"data": ("system.Dataset", data_uri)},
        input_metadata={"data": {"split": "train"}},
    )  # fmt: skip
    return executor.launch(launcher.run, ["--executor_input", json.dumps(doc)])


def test_launcher_writes_statistics_report_and_metadata(tmp_path):
    data = tfdv_testing.write_parquet(tfdv_testing.sample(), tmp_path / "data", parts=2)
    assert run_launcher(tmp_path, str(data), {"slice_features": ["SEX"]}) == 0
    out = json.loads((tmp_path / "out" / "executor_output.json").read_text())
    meta = out["artifacts"]["statistics"]["artifacts"][0]["metadata"]
    assert meta["num_examples"] == 2000 and meta["num_features"] == 19
    assert len(meta["slices"]) == 3
    stats = artifacts.load_statistics(str(tmp_path / "out" / "statistics"), "statistics")
    assert stats.datasets[0].num_examples == 2000  # the default slice
    page = (tmp_path / "out" / "report").read_text()
    assert "Statistics of train" in page and "AGEP" in page and "<script" not in page


def test_a_column_type_differing_between_files_is_a_user_error_naming_both(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(pa.table({"AGEP": [41.0, 23.0], "SEX": ["1", "2"]}), data / "data-0.parquet")
    pq.write_table(pa.table({"AGEP": ["41", "x"], "SEX": ["2", "1"]}), data / "data-1.parquet")
    with pytest.raises(ValueError, match="'AGEP' is double in .*data-0.parquet.* but string in "
                                         ".*data-1.parquet"):  # fmt: skip
        find_data_files(str(data), "data")
    assert run_launcher(tmp_path, str(data)) == executor.EXIT_USER_ERROR
    # widths TFDV reads the same way mix freely
    widths = tmp_path / "widths"
    widths.mkdir()
    pq.write_table(pa.table({"n": pa.array([1], pa.int32())}), widths / "a.parquet")
    pq.write_table(pa.table({"n": pa.array([2, 3], pa.int64())}), widths / "b.parquet")
    assert find_data_files(str(widths), "data").rows == 3


def test_launcher_failure_leaves_no_outputs(tmp_path):
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "data-0.parquet").write_bytes(b"garbage")
    assert run_launcher(tmp_path, str(bad)) == executor.EXIT_USER_ERROR
    assert not os.path.exists(tmp_path / "out" / "statistics")
    assert not os.path.exists(tmp_path / "out" / "executor_output.json")
