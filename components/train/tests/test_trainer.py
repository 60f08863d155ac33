"""Input checks, features, the tf.data pipeline and the export of the trainer, on real files."""

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit.components.train.curve import training_curve_html
from kfpkit.tabular import CATEGORICAL, NUMERIC, FeatureSpec
from kfpkit.training import trainer
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
        trainer.load_features(_request(splits, validation=empty))
    with pytest.raises(ValueError, match="train_data: label column 'label' not in the data"):
        trainer.load_features(_request(splits, label_column="label"))
    three = sample.set_column(
        sample.schema.get_field_index("employed"), "employed",
        pa.array(np.arange(sample.num_rows) % 3),
    )  # fmt: skip
    with pytest.raises(ValueError, match="'employed' is not binary 0/1; values: 0, 1, 2"):
        trainer.load_features(_request(splits, train=_write(tmp_path, "three", three)))
    with pytest.raises(ValueError, match="train_data: .*missing' does not exist"):
        trainer.load_features(_request(splits, train=tmp_path / "missing"))
    (tmp_path / "no_files").mkdir()
    with pytest.raises(ValueError, match="train_data: no .parquet files under"):
        trainer.load_features(_request(splits, train=tmp_path / "no_files"))


def test_required_feature_with_nulls_names_column_and_count(splits, tmp_path):
    sample = pq.read_table(splits["validation"])
    ages = sample["AGEP"].to_pylist()
    ages[:7] = [None] * 3 + [float("nan")] * 4
    holes = sample.set_column(sample.schema.get_field_index("AGEP"), "AGEP", pa.array(ages))
    holed = _write(tmp_path, "holes", holes)
    with pytest.raises(ValueError, match="validation_data: column 'AGEP' has 7 null/NaN"):
        trainer.load_features(_request(splits, validation=holed, schema_path=str(SCHEMA)))
    # without a schema nulls are allowed: the model fills them with the train mean
    specs, *_, x_val, _ = trainer.load_features(_request(splits, validation=holed))
    assert np.isnan(x_val["AGEP"]).sum() == 7


def test_dataset_yields_every_row_once_per_epoch_reshuffled():
    features = {"a": np.arange(10, dtype=np.float32), "b": np.array(list("abcdefghij"), object)}
    dataset = trainer.make_dataset(features, np.arange(10, dtype=np.float32), 4, shuffle_seed=1)
    epochs = [[(x["a"].numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
    for batches in epochs:
        assert [len(a) for a, _ in batches] == [4, 4, 2]
        rows = np.concatenate([a for a, _ in batches])
        assert sorted(rows) == list(range(10))
        assert all((a == y).all() for a, y in batches)  # features and labels stay aligned
    assert not np.array_equal(*(np.concatenate([a for a, _ in b]) for b in epochs))


def test_failed_export_leaves_no_version_folder(tmp_path):
    class BrokenModel:
        def export(self, path, **kwargs):
            os.makedirs(os.path.join(path, "variables"))
            open(os.path.join(path, "saved_model.pb"), "w").close()
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        trainer.export_model(BrokenModel(), str(tmp_path), 3)
    assert os.listdir(tmp_path) == []


def test_training_curve_is_self_contained():
    history = {"loss": [0.7, 0.5, 0.45], "val_loss": [0.69, 0.55, 0.5], "accuracy": [0.6, 0.7, 0.8],
               "val_accuracy": [0.6, 0.68, 0.75], "auc": [0.6, 0.7, 0.8]}  # fmt: skip
    page = training_curve_html(history, "v1 <test>")
    assert page.count("<svg") == 3 and "v1 &lt;test&gt;" in page
    assert not any(s in page for s in ("<script", "src=", "href=", "@import", "url("))
