"""An independent Python computation of a key's bucket: no BigQuery, only FarmHash (pyfarmhash).

Tells offline which split a key lands in, and is the reference the tests and benchmarks check
BigQuery and the emulator against. Needs ``pyfarmhash`` (a dev dependency, not in the images).
"""

from __future__ import annotations

from kfpkit.components.bigquery_split import sql


def fingerprint(key: str) -> int:
    """FarmHash Fingerprint64 of ``key`` as BigQuery's ``FARM_FINGERPRINT`` returns it (signed)."""
    import farmhash

    fp = int(farmhash.fingerprint64(key))
    return fp - (1 << 64) if fp >= (1 << 63) else fp


def bucket(key: str) -> int:
    """``MOD(MOD(FARM_FINGERPRINT(key), N) + N, N)``: Python's ``%`` is that floor modulo."""
    return fingerprint(key) % sql.BUCKETS


def split_of(key: str, split_ratios: dict[str, float]) -> str:
    """Name of the split a key (already encoded as in sql.key_expression) lands in."""
    b = bucket(key)
    return next(r.name for r in sql.split_ranges(split_ratios) if r.lower <= b < r.upper)
