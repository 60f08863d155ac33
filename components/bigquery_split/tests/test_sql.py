"""Pure tests of identifier validation, bucket ranges and the shape of the split's SQL."""

import re

import pytest

from kfpkit.components.bigquery_split import sql

SOURCE = sql.TableRef("proj-1", "ds", "src")
STAGING = sql.TableRef("proj-1", "out", "_kfpkit_split_x")


@pytest.mark.parametrize(
    "value",
    [
        "a.b.c`; DROP TABLE x",
        "a.b.c; DROP TABLE x",
        "proj.ds",
        "proj.ds.t.extra",
        "Proj.ds.t",  # project ids are lower case
        "proj.d s.t",
        "proj.ds.t'--",
        "proj.ds.t\n",
        "",
        "proj..t",
    ],
)
def test_table_id_rejects_malformed_and_injected(value):
    with pytest.raises(ValueError) as e:
        sql.parse_table_id(value, "source_table")
    assert "source_table" in str(e.value)


def test_table_id_accepts_real_forms():
    assert sql.parse_table_id("my-proj.my_ds.tbl-2024").id == "my-proj.my_ds.tbl-2024"
    ref = sql.parse_table_id("example.com:proj.ds.t")
    assert (ref.project, ref.dataset, ref.table) == ("example.com:proj", "ds", "t")
    assert ref.sql == "`example.com:proj.ds.t`"


@pytest.mark.parametrize("cols", [[], "", ["a b"], ["a`"], ["1abc"], ["a", "a"], [None]])
def test_key_columns_invalid(cols):
    with pytest.raises(ValueError, match="key_columns"):
        sql.check_columns(cols)


def test_key_column_string_is_a_list_of_one():
    assert sql.check_columns("id") == ["id"]


@pytest.mark.parametrize(
    "ratios, message",
    [
        ({"train": 0.8, "test": 0.1}, "sum to 1"),
        ({"train": 1.1, "test": -0.1}, "positive"),
        ({"train": 1.0, "test": 0.0}, "positive"),
        ({"train": "0.5", "test": 0.5}, "number"),
        ({"train": True}, "number"),
        ({"train": float("nan")}, "number"),
        ({}, "non-empty"),
        ({"bad name": 1.0}, "invalid"),
        ({"x; DROP": 1.0}, "invalid"),
        ({"train": 1 - 1e-7, "tiny": 1e-7}, "resolution"),
    ],
)
def test_ratios_invalid(ratios, message):
    with pytest.raises(ValueError, match=message):
        sql.split_ranges(ratios)


def test_ranges_cover_all_buckets_in_canonical_order():
    ranges = sql.split_ranges({"test": 0.1, "holdout": 0.05, "validation": 0.1, "train": 0.75})
    assert [r.name for r in ranges] == ["train", "validation", "test", "holdout"]
    assert ranges[0].lower == 0 and ranges[-1].upper == sql.BUCKETS
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.upper == b.lower
    assert [(r.upper - r.lower) for r in ranges] == [750_000, 100_000, 100_000, 50_000]


def test_ranges_do_not_depend_on_key_order():
    a = sql.split_ranges({"train": 0.8, "validation": 0.1, "test": 0.1})
    b = sql.split_ranges({"test": 0.1, "train": 0.8, "validation": 0.1})
    assert a == b


def test_key_expression_single_and_multi():
    types = {"id": "INTEGER", "name": "STRING", "d": "DATE"}
    assert sql.key_expression(["name"], types) == "`name`"
    assert sql.key_expression(["id"], types) == "CAST(`id` AS STRING)"
    assert (
        sql.key_expression(["id", "name", "d"], types)
        == "CONCAT(CAST(`id` AS STRING), '|', `name`, '|', CAST(`d` AS STRING))"
    )


@pytest.mark.parametrize("kind", ["FLOAT", "FLOAT64", "TIMESTAMP", "RECORD", "NUMERIC"])
def test_key_expression_refuses_unrepeatable_types(kind):
    with pytest.raises(ValueError, match=f"type {kind}"):
        sql.key_expression(["x"], {"x": kind})


def test_assign_reads_source_once_and_hashes_once():
    statement = sql.assign_sql(SOURCE, STAGING, "CAST(`id` AS STRING)")
    assert statement.count(SOURCE.sql) == 1
    assert statement.count("FARM_FINGERPRINT") == 1
    assert statement.startswith(f"CREATE OR REPLACE TABLE {STAGING.sql}")


def test_split_statements_read_staging_not_source():
    columns = ["id", "AGEP"]
    for r in sql.split_ranges({"train": 0.5, "test": 0.5}):
        for statement in (
            sql.write_split_sql(STAGING, sql.TableRef("p1", "out", f"t_{r.name}"), r, columns),
            sql.export_split_sql(STAGING, "gs://bucket/a/data-*.parquet", r, columns),
        ):
            assert SOURCE.sql not in statement and "FARM_FINGERPRINT" not in statement
            assert STAGING.sql in statement
            assert re.search(
                rf"{sql.BUCKET_COLUMN} >= {r.lower} AND {sql.BUCKET_COLUMN} < {r.upper}", statement
            )
            assert "`AGEP` AS `AGEP`" in statement


@pytest.mark.parametrize(
    "uri",
    [
        "gs://b/x/data-*.parquet' ; DROP",
        "/local/data-*.parquet",
        "gs://b/x/data.parquet",
        "s3://b/x/*.parquet",
    ],
)
def test_export_uri_validated(uri):
    with pytest.raises(ValueError, match="gs://"):
        sql.export_split_sql(STAGING, uri, sql.SplitRange("train", 0, 10), ["id"])


def test_projection_refuses_unquotable_source_columns():
    with pytest.raises(ValueError, match="cannot be quoted"):
        sql.projection(["ok", "bad`name"])
