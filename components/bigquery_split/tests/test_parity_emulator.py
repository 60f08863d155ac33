"""Parity: the same table split by BigQuery (the emulator, through the real client and the
runner's SQL) and by the embedded engine gives the same rows in every split.

Keys up to 64 bytes, where the emulator's FARM_FINGERPRINT is right; longer keys are checked
against pyfarmhash (the C++ library), with the emulator's defect there asserted so that a
fixed emulator shows up.
"""

from __future__ import annotations

import datetime
import glob
import random
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfpkit import demo_data
from kfpkit.components.bigquery_split import embedded, reference
from kfpkit.components.bigquery_split.runner import SplitRequest, SplitRunner

pytestmark = pytest.mark.emulator

RATIOS = {"train": 0.5, "validation": 0.2, "test": 0.2, "holdout": 0.1}
SPECIAL = ["", " ", "한국어", "Ünïcödé ß", "🙂🙂", 'say "hi"', "it's", "a,b", "a|b", "|",
           "line\nbreak", "tab\tx", "back\\slash", "NULL", "0", "-1"]  # fmt: skip


def key_table(rows: int = 400, seed: int = 18) -> pa.Table:
    rng = random.Random(seed)
    alphabet = "abcxyz019 ,|\"'\n" + "éß한🙂"
    strings = SPECIAL + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 10)))
        for _ in range(rows - len(SPECIAL))
    ]
    assert max(len(s.encode()) for s in strings) <= 40  # a 3-column key stays <= 64 bytes
    return pa.table({
        "row": pa.array(range(rows), pa.int64()),
        "s": strings,
        "i": pa.array([rng.randrange(-10**12, 10**12) for _ in range(rows)], pa.int64()),
        "d": pa.array([datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(60000))
                       for _ in range(rows)], pa.date32()),
        "b": [rng.random() < 0.5 for _ in range(rows)],
        "y": [r % 2 for r in range(rows)],
    })  # fmt: skip


def bigquery_split_rows(emulator, bq, dataset, parquet: Path, key_columns, tmp_path):
    name = f"src_{uuid.uuid4().hex[:8]}"
    table_id = f"{dataset}.{name}"
    demo_data.load_into_bigquery(bq, parquet, table_id)
    out = tmp_path / f"bq-{name}"
    request = SplitRequest(
        source_table=table_id,
        key_columns=key_columns,
        split_ratios=RATIOS,
        destination_dataset=dataset.split(".")[1],
        project=dataset.split(".")[0],
        bigquery_endpoint=emulator.endpoint,
        export_uris={n: str(out / n) for n in RATIOS},
    )
    SplitRunner(request).run()
    return {n: set(pq.read_table(glob.glob(str(out / n / "data-*.parquet")))["row"].to_pylist())
            for n in RATIOS}  # fmt: skip


def embedded_split_rows(parquet: Path, key_columns, tmp_path):
    out = tmp_path / f"embedded-{uuid.uuid4().hex[:8]}"
    embedded.split_files(str(parquet), key_columns, RATIOS, {n: str(out / n) for n in RATIOS})
    return {n: set(pq.read_table(out / n)["row"].to_pylist()) for n in RATIOS}


@pytest.mark.parametrize(
    "key_columns",
    [["s"], ["i"], ["d"], ["b"], ["s", "i"], ["i", "s"], ["s", "d", "b"], ["d", "b", "s", "i"]],
    ids="+".join,
)
def test_bigquery_and_embedded_engine_assign_the_same_rows(
    emulator, bq, dataset, tmp_path, key_columns
):
    parquet = tmp_path / "keys.parquet"
    pq.write_table(key_table(), parquet)
    on_bigquery = bigquery_split_rows(emulator, bq, dataset, parquet, key_columns, tmp_path)
    embedded_rows = embedded_split_rows(parquet, key_columns, tmp_path)
    assert embedded_rows == on_bigquery
    assert sum(len(v) for v in embedded_rows.values()) == 400
    if key_columns != ["b"]:  # two keys only: everything may land in one split
        assert all(embedded_rows.values()), {n: len(v) for n, v in embedded_rows.items()}


def test_null_keys_are_refused_alike(emulator, bq, dataset, tmp_path):
    table = key_table(50)
    strings = table["s"].to_pylist()
    strings[3] = strings[17] = None  # one NULL column makes the multi-column key NULL (CONCAT)
    parquet = tmp_path / "nulls.parquet"
    pq.write_table(table.set_column(1, "s", pa.array(strings)), parquet)
    for key_columns in (["s"], ["i", "s"]):
        with pytest.raises(ValueError, match=r"\b2 of 50 rows") as on_bigquery:
            bigquery_split_rows(emulator, bq, dataset, parquet, key_columns, tmp_path)
        with pytest.raises(ValueError, match=r"\b2 of 50 rows") as on_embedded:
            embedded_split_rows(parquet, key_columns, tmp_path)
        assert "NULL" in str(on_bigquery.value) and "NULL" in str(on_embedded.value)


def test_keys_over_64_bytes_follow_farmhash_where_the_emulator_does_not(
    emulator, bq, dataset, tmp_path
):
    """Real BigQuery's FARM_FINGERPRINT is FarmHash Fingerprint64 at every length; the
    emulator's is wrong beyond 64 bytes (ENVIRONMENT facts): the embedded engine follows
    FarmHash (pyfarmhash), so there it agrees with BigQuery and not with the emulator."""
    rng = random.Random(64)
    strings = ["k" * 65, "é" * 40, "🙂" * 30] + [
        "".join(rng.choice("abc,|\n한") for _ in range(rng.randrange(65, 300))) for _ in range(97)
    ]
    assert min(len(s.encode()) for s in strings) > 64
    table = pa.table({"row": pa.array(range(100), pa.int64()), "s": strings})
    parquet = tmp_path / "long.parquet"
    pq.write_table(table, parquet)

    embedded_rows = embedded_split_rows(parquet, ["s"], tmp_path)
    farmhash_rows = {n: set() for n in RATIOS}
    for row, key in enumerate(strings):
        farmhash_rows[reference.split_of(key, RATIOS)].add(row)
    assert embedded_rows == farmhash_rows

    emulator_rows = bigquery_split_rows(emulator, bq, dataset, parquet, ["s"], tmp_path)
    assert emulator_rows != farmhash_rows  # if this fails, the emulator was fixed: update docs
