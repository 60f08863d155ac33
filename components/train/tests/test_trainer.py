"""Input checks, features, the streamed tf.data pipeline, the stopping rule and the export of
the trainer, on real files."""

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit.components.train.curve import training_curve_html
from kfpkit.hyperparameters import Hyperparameters
from kfpkit.tabular import CATEGORICAL, NUMERIC, FeatureSpec
from kfpkit.training import inputs, trainer
from kfpkit.training.schema import load_schema_features

SCHEMA = Path(__file__).parent / "data" / "schema.pbtxt"


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(list(fields))


def test_features_inferred_from_arrow_types_skip_label_and_id():
    columns = _schema(("id", pa.int64()), ("AGEP", pa.float64()), ("SEX", pa.string()),
                      ("employed", pa.int64()))  # fmt: skip
    specs = trainer.select_features(columns, None, "employed", (), ("id",))
    assert specs == [FeatureSpec("AGEP", NUMERIC), FeatureSpec("SEX", CATEGORICAL)]


def test_features_from_the_schema_and_missing_columns(splits):
    schema = load_schema_features(str(SCHEMA))
    columns = pq.read_schema(next(splits["train"].iterdir()))
    specs = trainer.select_features(columns, schema, "employed", (), ("id",))
    assert len(specs) == 17 and all(s.required for s in specs)
    lacking = columns.remove(columns.get_field_index("SCHL"))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['SCHL'\] that the schema requires"):
        trainer.select_features(lacking, schema, "employed", (), ("id",))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['nope'\] that feature_columns"):
        trainer.select_features(columns, schema, "employed", ("AGEP", "nope"), ())
    with pytest.raises(ValueError, match="feature_columns includes the label"):
        trainer.select_features(columns, None, "employed", ("employed",), ())


def _request(splits, **kwargs) -> trainer.TrainRequest:
    return trainer.TrainRequest(
        train_path=str(kwargs.pop("train", splits["train"])),
        validation_path=str(kwargs.pop("validation", splits["validation"])),
        model_dir="/nonexistent/model",
        **{"label_column": "employed", "exclude_columns": ("id",), **kwargs},
    )


def _write(tmp_path, name: str, table: pa.Table) -> str:
    (tmp_path / name).mkdir()
    pq.write_table(table, tmp_path / name / "data-0.parquet")
    return str(tmp_path / name)


def test_bad_splits_fail_before_training(splits, tmp_path):
    sample = pq.read_table(splits["train"])
    empty = _write(tmp_path, "empty", sample.slice(0, 0))
    with pytest.raises(ValueError, match="validation_data: the split at .* has 0 rows"):
        trainer.scan_inputs(_request(splits, validation=empty))
    with pytest.raises(ValueError, match="train_data: label column 'label' not in the data"):
        trainer.scan_inputs(_request(splits, label_column="label"))
    three = sample.set_column(
        sample.schema.get_field_index("employed"), "employed",
        pa.array(np.arange(sample.num_rows) % 3),
    )  # fmt: skip
    with pytest.raises(ValueError, match="'employed' is not binary 0/1; values: 0, 1, 2"):
        trainer.scan_inputs(_request(splits, train=_write(tmp_path, "three", three)))
    with pytest.raises(ValueError, match="train_data: .*missing' does not exist"):
        trainer.scan_inputs(_request(splits, train=tmp_path / "missing"))
    (tmp_path / "no_files").mkdir()
    with pytest.raises(ValueError, match="train_data: no .parquet files under"):
        trainer.scan_inputs(_request(splits, train=tmp_path / "no_files"))


def test_required_feature_with_nulls_names_column_and_count(splits, tmp_path):
    sample = pq.read_table(splits["validation"])
    ages = sample["AGEP"].to_pylist()
    ages[:7] = [None] * 3 + [float("nan")] * 4
    holes = sample.set_column(sample.schema.get_field_index("AGEP"), "AGEP", pa.array(ages))
    holed = _write(tmp_path, "holes", holes)
    with pytest.raises(ValueError, match="validation_data: column 'AGEP' has 7 null/NaN"):
        trainer.scan_inputs(_request(splits, validation=holed, schema_path=str(SCHEMA)))
    # without a schema nulls are allowed: the model fills them with the train mean
    data = trainer.scan_inputs(_request(splits, validation=holed))
    assert data.validation.rows == 1000
    streamed = inputs.make_dataset(data.validation.files, data.features, "employed", 256)
    assert sum(int(np.isnan(x["AGEP"].numpy()).sum()) for x, _ in streamed) == 7


def _rows_files(tmp_path) -> list[str]:
    """Rows 0..9 (a: the row, b: its letter, label y: a % 2) in two files of row groups of
    3 rows."""
    table = pa.table({"a": np.arange(10, dtype=np.float64), "b": list("abcdefghij"),
                      "y": np.arange(10) % 2})  # fmt: skip
    paths = [str(tmp_path / "data-0.parquet"), str(tmp_path / "data-1.parquet")]
    pq.write_table(table.slice(0, 4), paths[0], row_group_size=3)
    pq.write_table(table.slice(4), paths[1], row_group_size=3)
    return paths


SPECS = [FeatureSpec("a", NUMERIC), FeatureSpec("b", CATEGORICAL)]


def test_streamed_dataset_yields_every_row_once_per_epoch_reshuffled(tmp_path):
    files = _rows_files(tmp_path)
    # windows of 4 rows: rows are shuffled across row groups and files, within bounded memory
    dataset = inputs.make_dataset(files, SPECS, "y", 4, shuffle_seed=1, window_rows=4)
    assert int(dataset.cardinality()) == 3
    epochs = [[(x["a"].numpy(), x["b"].numpy(), y.numpy()) for x, y in dataset] for _ in "12"]
    for batches in epochs:
        assert [len(a) for a, _, _ in batches] == [4, 4, 2]
        rows = np.concatenate([a for a, _, _ in batches])
        assert sorted(rows) == list(range(10))
        for a, b, y in batches:  # features and labels stay aligned
            assert (a % 2 == y).all() and [chr(ord("a") + int(i)).encode() for i in a] == list(b)
    assert not np.array_equal(*(np.concatenate([a for a, _, _ in b]) for b in epochs))
    ordered = inputs.make_dataset(files, SPECS, "y", 4)  # no seed: file order (validation)
    assert np.concatenate([x["a"].numpy() for x, _ in ordered]).tolist() == list(range(10))


def test_shards_split_the_rows_equally_and_exactly_once(tmp_path):
    files = _rows_files(tmp_path)
    shards = [
        np.concatenate([x["a"].numpy() for x, _ in inputs.make_dataset(
            files, SPECS, "y", 2, shard_index=i, shard_count=3, shuffle_seed=5)])
        for i in range(3)
    ]  # fmt: skip
    assert [len(s) for s in shards] == [3, 3, 4]
    assert sorted(np.concatenate(shards).tolist()) == list(range(10))
    with pytest.raises(ValueError, match=r"shard index 3 is not in \[0, 3\)"):
        inputs.make_dataset(files, SPECS, "y", 2, shard_index=3, shard_count=3)


def test_streamed_statistics_equal_the_whole_columns(splits):
    data = trainer.scan_inputs(_request(splits))
    whole = pq.read_table(splits["train"])
    assert data.train.rows == whole.num_rows == 4000
    for spec in data.features:
        exact = trainer.feature_stats(spec, trainer.tabular.feature_array(whole, spec))
        streamed = data.stats[spec.name]
        assert streamed.vocabulary == exact.vocabulary
        assert streamed.mean == pytest.approx(exact.mean, rel=1e-9)
        assert streamed.variance == pytest.approx(exact.variance, rel=1e-9)
    ages = whole["AGEP"].to_numpy()
    assert data.stats["AGEP"].mean == pytest.approx(np.nanmean(ages), rel=1e-6)
    assert data.stats["AGEP"].variance == pytest.approx(np.nanvar(ages), rel=1e-6)
    counts = pa.compute.value_counts(whole["SEX"]).to_pylist()
    top = max(counts, key=lambda c: c["counts"])["values"]
    assert data.stats["SEX"].vocabulary[0] == top


def test_stopping_rule_stops_when_validation_auc_stops_paying(splits, tmp_path):
    # no epoch can raise AUC by more than 1: the second epoch ends training, the better of
    # the two is kept
    hp = Hyperparameters(epochs=5, batch_size=256, early_stopping_patience=1,
                         early_stopping_min_delta=1.0)  # fmt: skip
    request = _request(splits, hyperparameters=hp)
    result = trainer.train(
        trainer.TrainRequest(**{**request.__dict__, "model_dir": str(tmp_path / "model")})
    )
    aucs = result.history["val_auc"]
    assert result.metrics["epochs_run"] == 2 == len(aucs)
    assert result.metrics["best_epoch"] == int(np.argmax(aucs)) + 1
    assert result.metrics["validation_auc"] == pytest.approx(max(aucs))


# Validation AUC per epoch of the demo model on 1M rows (benchmarks/RESULTS.md).
CURVE_1M = [0.90445, 0.90585, 0.90589, 0.90686, 0.90728, 0.90771, 0.90808, 0.90838, 0.90866,
            0.90904]  # fmt: skip


@pytest.mark.parametrize(
    ("patience", "min_delta", "epochs_run"), [(2, 0.001, 6), (1, 0.001, 3), (2, 0.0005, 10)]
)
def test_stop_when_flat_counts_gains_since_the_last_paying_epoch(patience, min_delta, epochs_run):
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.stop_training = False
    stopper = trainer.StopWhenFlat("val_auc", patience, min_delta)
    stopper.set_model(model)
    for epoch, auc in enumerate(CURVE_1M):
        model.set_weights([np.array([[auc]])])  # the weights name their epoch
        stopper.on_epoch_end(epoch, {"val_auc": auc})
        if model.stop_training:
            break
    assert epoch + 1 == epochs_run
    stopper.on_train_end()
    # the best epoch's weights, even when its gain was too small to pay for more epochs
    assert model.get_weights()[0][0, 0] == pytest.approx(max(CURVE_1M[:epochs_run]))


def test_failed_export_leaves_no_version_folder(tmp_path):
    class BrokenModel:
        def export(self, path, **kwargs):
            os.makedirs(os.path.join(path, "variables"))
            open(os.path.join(path, "saved_model.pb"), "w").close()
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        trainer.export_model(BrokenModel(), str(tmp_path), 3)
    assert os.listdir(tmp_path) == []


def test_fit_refuses_a_multi_worker_tf_config(splits, monkeypatch):
    """model.fit cannot train multi-worker (keras-team/keras#20585): kfpkit.training.run
    sends such a cluster to the distributed loop, and the trainer alone refuses it."""
    two = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}'
    monkeypatch.setenv("TF_CONFIG", two)
    with pytest.raises(RuntimeError, match="TF_CONFIG names 2 workers: kfpkit.training.run"):
        trainer.train(_request(splits))


def test_training_curve_is_self_contained():
    history = {"loss": [0.7, 0.5, 0.45], "val_loss": [0.69, 0.55, 0.5], "accuracy": [0.6, 0.7, 0.8],
               "val_accuracy": [0.6, 0.68, 0.75], "auc": [0.6, 0.7, 0.8]}  # fmt: skip
    page = training_curve_html(history, "v1 <test>")
    assert page.count("<svg") == 3 and "v1 &lt;test&gt;" in page
    assert not any(s in page for s in ("<script", "src=", "href=", "@import", "url("))


def test_iter_split_reads_bounded_batches_and_checks_columns_first(tmp_path):
    files = _rows_files(tmp_path)
    batches = list(trainer.tabular.iter_split(str(tmp_path), "test_data", ["a", "y"], 3))
    assert max(t.num_rows for t in batches) <= 3 and sum(t.num_rows for t in batches) == 10
    assert np.concatenate([t["a"].to_numpy() for t in batches]).tolist() == list(range(10))
    with pytest.raises(ValueError, match=r"test_data: column\(s\) \['nope'\] not in the data"):
        next(trainer.tabular.iter_split(str(tmp_path), "test_data", ["a", "nope"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    pq.write_table(pq.read_table(files[0]).slice(0, 0), empty / "data-0.parquet")
    with pytest.raises(ValueError, match="test_data: the split at .* has 0 rows"):
        list(trainer.tabular.iter_split(str(empty), "test_data", ["a"]))
