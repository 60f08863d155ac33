"""The key hash of the whole project: BigQuery's ``FARM_FINGERPRINT``, computed in Python.

``bigquery_split`` assigns rows to splits by ``MOD(FARM_FINGERPRINT(key), BUCKETS)`` in SQL;
the local server's sticky A/B routing assigns users to variants by the same bucket of the same
hash, so both are reproducible offline, in a notebook or in BigQuery itself. ``FARM_FINGERPRINT``
is FarmHash Fingerprint64 (``pyfarmhash``'s ``fingerprint64``), read as a signed 64-bit integer.
"""

from __future__ import annotations

# Buckets of a key: the resolution of a split ratio or a variant weight (1 / BUCKETS).
BUCKETS = 1_000_000


def fingerprint(key: str) -> int:
    """FarmHash Fingerprint64 of ``key`` as BigQuery's ``FARM_FINGERPRINT`` returns it (signed)."""
    import farmhash

    fp = int(farmhash.fingerprint64(key))
    return fp - (1 << 64) if fp >= (1 << 63) else fp


def bucket(key: str, buckets: int = BUCKETS) -> int:
    """``MOD(MOD(FARM_FINGERPRINT(key), N) + N, N)``: Python's ``%`` is that floor modulo."""
    return fingerprint(key) % buckets
