"""kfpkit.splitting: the numpy FarmHash against the C++ library (pyfarmhash), and the one key
encoding rendered as SQL and computed over Arrow."""

from __future__ import annotations

import datetime
import random

import farmhash
import numpy as np
import pyarrow as pa
import pytest

from kfpkit.splitting import keys
from kfpkit.splitting.farmhash import fingerprint64


def signed_farmhash(key: str) -> int:
    fp = int(farmhash.fingerprint64(key))
    return fp - (1 << 64) if fp >= (1 << 63) else fp


def random_text(rng: random.Random, length: int) -> str:
    """Mostly ASCII, with 2-, 3- and 4-byte UTF-8 characters: byte lengths of every size."""
    alphabet = "abcXYZ019 ,|\"'\n\t" + "éß" + "한국" + "🙂"
    return "".join(rng.choice(alphabet) for _ in range(length))


def test_fingerprint_equals_farmhash_at_every_length():
    """Each FarmHash length range (0-16, 17-32, 33-64, 65+ in 64-byte blocks) has its own code
    path: every byte length from 0 to 300 and some long keys, several keys each."""
    rng = random.Random(18)
    texts = ["", "a", "hello", "한국어", "a,b", 'say "hi"', "line\nbreak", "x" * 5000]
    for n in range(301):
        texts += ["".join(rng.choice("abcdefgh0123") for _ in range(n)) for _ in range(3)]
    texts += [random_text(rng, rng.randrange(0, 200)) for _ in range(500)]
    lengths = {len(t.encode()) for t in texts}
    assert set(range(301)) <= lengths

    got = fingerprint64(pa.array(texts))
    want = np.array([signed_farmhash(t) for t in texts], np.int64)
    wrong = [(t, g, w) for t, g, w in zip(texts, got, want, strict=True) if g != w]
    assert not wrong, wrong[:3]


def test_fingerprint_of_slices_chunks_and_large_strings():
    texts = [f"key-{i}" * (i % 20) for i in range(1000)]
    want = np.array([signed_farmhash(t) for t in texts], np.int64)
    array = pa.array(texts)
    assert (fingerprint64(array.slice(250, 500)) == want[250:750]).all()
    chunked = pa.chunked_array([array.slice(0, 10), array.slice(10, 990)])
    assert (fingerprint64(chunked) == want).all()
    assert (fingerprint64(array.cast(pa.large_string())) == want).all()
    assert fingerprint64(pa.array([], pa.string())).shape == (0,)


def test_fingerprint_refuses_nulls_and_non_strings():
    with pytest.raises(ValueError, match="NULL"):
        fingerprint64(pa.array(["a", None]))
    with pytest.raises(TypeError, match="int64"):
        fingerprint64(pa.array([1, 2]))


def test_key_text_writes_what_bigquery_cast_writes():
    table = pa.table({
        "s": ["a", "", "한국어", 'q"uote,comma\nnewline'],
        "i": pa.array([-5, 0, 2**62, 7], pa.int64()),
        "d": [datetime.date(2020, 1, 31), datetime.date(1, 1, 1), None, datetime.date(1999, 12, 1)],
        "b": [True, False, True, None],
        "c": pa.array(["x", "y", "x", "y"]).dictionary_encode(),
    })  # fmt: skip
    assert keys.key_text(table, ["s"]).to_pylist() == table["s"].to_pylist()
    assert keys.key_text(table, ["i"]).to_pylist() == ["-5", "0", "4611686018427387904", "7"]
    assert keys.key_text(table, ["d"]).to_pylist() == ["2020-01-31", "0001-01-01", None,
                                                       "1999-12-01"]  # fmt: skip
    assert keys.key_text(table, ["b"]).to_pylist() == ["true", "false", "true", None]
    assert keys.key_text(table, ["c"]).to_pylist() == ["x", "y", "x", "y"]
    # several columns: '|' between the texts, NULL when any is NULL (as CONCAT)
    assert keys.key_text(table, ["s", "i", "b"]).to_pylist() == [
        "a|-5|true", "|0|false", "한국어|4611686018427387904|true", None,
    ]  # fmt: skip


def test_key_sql_is_rendered_from_the_same_kinds():
    types = {"s": "STRING", "i": "INTEGER", "d": "DATE", "b": "BOOL"}
    assert keys.key_sql(["s"], types) == "`s`"
    assert keys.key_sql(["i"], types) == "CAST(`i` AS STRING)"
    assert keys.key_sql(["s", "d", "b"], types) == (
        "CONCAT(`s`, '|', CAST(`d` AS STRING), '|', CAST(`b` AS STRING))"
    )
    assert keys.bucket_sql("`s`") == ("MOD(MOD(FARM_FINGERPRINT(`s`), 1000000) + 1000000, 1000000)")
    # every BigQuery key type has an Arrow counterpart and the other way round
    for kind in keys.KEY_KINDS:
        assert kind.bigquery_types and kind.arrow_predicates


@pytest.mark.parametrize(
    ("arrow_type", "bigquery_type"),
    [(pa.float64(), "FLOAT64"), (pa.timestamp("us", "UTC"), "TIMESTAMP")],
)
def test_keys_that_would_not_split_repeatably_are_refused(arrow_type, bigquery_type):
    with pytest.raises(ValueError, match="key column 'k' has type .*repeatable"):
        keys.kind_of_arrow_type("k", arrow_type)
    with pytest.raises(ValueError, match=f"key column 'k' has type {bigquery_type}"):
        keys.key_sql(["k"], {"k": bigquery_type})


def test_buckets_are_the_floor_modulo_and_ranges_cover_them():
    fps = np.array([-1, -1_000_000, -1_000_001, 0, 999_999, 2**63 - 1, -(2**63)], np.int64)
    assert keys.buckets(fps).tolist() == [int(f) % keys.BUCKETS for f in fps.tolist()]
    ranges = keys.split_ranges({"train": 0.5, "test": 0.25, "validation": 0.25})
    index = keys.split_index(np.array([0, 499_999, 500_000, 749_999, 750_000, 999_999]), ranges)
    assert [ranges[i].name for i in index] == [
        "train", "train", "validation", "validation", "test", "test",
    ]  # fmt: skip
