"""The demo data: US Census ACS PUMS "employment" (Massachusetts 2015-2018), 277,677 rows.

It ships as Parquet inside the ``nannyml==0.13.1`` wheel on PyPI (Apache-2.0). We download
that wheel without installing it (it pulls a heavy stack), check its sha256, and read three
files out of it: the 2015 reference set (with labels) and the 2016-2018 analysis set joined on
``id`` to its labels. The previous model's ``prediction``/``predicted_probability`` columns
are dropped. Columns: ``id`` (unique key), ``AGEP`` (age, FLOAT64), 15 coded categoricals
(STRING), ``year`` (INT64) and the label ``employed`` (INT64, 0/1).

For scale tests, :func:`upsample` draws rows with replacement (seeded) and gives them new
unique ids: a bootstrap sample, so every column's distribution and the joint distribution of
all columns (including per-year proportions and the label rate) are those of the original
data in expectation; only ``id`` changes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

WHEEL = "nannyml-0.13.1-py3-none-any.whl"
WHEEL_SHA256 = "cf5f4a33489834ae6773cb1baa33a0f98c0a3ee6ed9b43049478b25ce22fe869"
PYPI_SIMPLE = os.environ.get("KFPKIT_PYPI_SIMPLE", "https://pypi.org/simple/") + "nannyml/"
_DATA = "nannyml/datasets/data/"
ROWS = 277_677
CATEGORICALS = [
    "SCHL",
    "MAR",
    "RELP",
    "DIS",
    "ESP",
    "CIT",
    "MIG",
    "MIL",
    "ANC",
    "NATIVITY",
    "DEAR",
    "DEYE",
    "DREM",
    "SEX",
    "RAC1P",
]
COLUMNS = ["id", "AGEP", *CATEGORICALS, "year", "employed"]
SCHEMA = pa.schema(
    [("id", pa.int64()), ("AGEP", pa.float64())]
    + [(c, pa.string()) for c in CATEGORICALS]
    + [("year", pa.int64()), ("employed", pa.int64())]
)
DEFAULT_CACHE = Path(".cache/demo")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(cache: Path = DEFAULT_CACHE) -> Path:
    """Downloads the nannyml wheel from PyPI (no install) and verifies its pinned sha256.

    ``KFPKIT_DEMO_WHEEL`` may name a local copy of the wheel (air-gapped machines).
    """
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL
    local = os.environ.get("KFPKIT_DEMO_WHEEL")
    if local:
        wheel = Path(local)
    elif not wheel.exists():
        # The simple index (PEP 503) is what every PyPI mirror serves.
        with urllib.request.urlopen(PYPI_SIMPLE, timeout=60) as r:
            page = r.read().decode()
        found = re.search(r'href="([^"#]*/' + re.escape(WHEEL) + r')[#"]', page)
        if not found:
            raise RuntimeError(f"{WHEEL} not listed at {PYPI_SIMPLE}")
        url = urllib.parse.urljoin(PYPI_SIMPLE, found.group(1))
        tmp = wheel.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=300) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
        tmp.replace(wheel)
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def _read(z: zipfile.ZipFile, name: str) -> pa.Table:
    return pq.read_table(io.BytesIO(z.read(_DATA + name)))


def build_table(wheel: Path) -> pa.Table:
    """The 277,677-row demo table, in :data:`SCHEMA`, ordered by id."""
    with zipfile.ZipFile(wheel) as z:
        reference = _read(z, "employment_MA_reference.pq")
        analysis = _read(z, "employment_MA_analysis.pq")
        target = _read(z, "employment_MA_analysis_target.pq")
    analysis = analysis.join(target, "id", join_type="inner")
    parts = []
    for t in (reference, analysis):
        cols = [pc.cast(t[c], SCHEMA.field(c).type) for c in COLUMNS]
        parts.append(pa.Table.from_arrays(cols, schema=SCHEMA))
    table = pa.concat_tables(parts).sort_by("id")
    if table.num_rows != ROWS:
        raise RuntimeError(f"demo table has {table.num_rows} rows, expected {ROWS}")
    return table


def demo_parquet(cache: Path = DEFAULT_CACHE) -> Path:
    """Path of ``employment.parquet`` (built once from the wheel, then cached)."""
    out = cache / "employment.parquet"
    if not out.exists():
        table = build_table(fetch_wheel(cache))
        tmp = out.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(out)
    return out


def upsample(table: pa.Table, rows: int, seed: int = 0) -> pa.Table:
    """A seeded bootstrap sample of ``rows`` rows with new unique ids 0..rows-1."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    picked = table.take(pa.array(rng.integers(0, table.num_rows, size=rows)))
    ids = pa.array(np.arange(rows, dtype=np.int64))
    return picked.set_column(picked.schema.get_field_index("id"), "id", ids)


def scaled_parquet(rows: int, cache: Path = DEFAULT_CACHE, seed: int = 0) -> Path:
    """Path of a cached upsampled copy of the demo data with ``rows`` rows."""
    out = cache / f"employment_{rows}_seed{seed}.parquet"
    if not out.exists():
        table = upsample(pq.read_table(demo_parquet(cache)), rows, seed)
        tmp = out.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(out)
    return out


_BQ_TYPES = {
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.string(): "STRING",
    pa.bool_(): "BOOL",
    pa.date32(): "DATE",
    pa.large_string(): "STRING",
}


def bigquery_schema(schema: pa.Schema = SCHEMA) -> list:
    """BigQuery schema for an Arrow schema (the emulator needs one to load Parquet)."""
    from google.cloud import bigquery

    return [bigquery.SchemaField(f.name, _BQ_TYPES[f.type]) for f in schema]


def load_into_bigquery(client, parquet: Path, table_id: str) -> int:  # type: ignore[no-untyped-def]
    """Loads a local Parquet file into ``table_id`` on the emulator (replacing it).

    The load job reads the file in place through gs:// (the emulator's gs:// root is /), so
    no bytes pass through the client. Returns the table's row count.
    """
    from google.cloud import bigquery

    project, dataset, _ = table_id.split(".")
    client.create_dataset(f"{project}.{dataset}", exists_ok=True)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        schema=bigquery_schema(pq.read_schema(parquet)),
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    uri = "gs://" + str(Path(parquet).absolute()).lstrip("/")
    client.load_table_from_uri(uri, table_id, job_config=config).result()
    return int(client.get_table(table_id).num_rows)


if __name__ == "__main__":
    print(demo_parquet())
