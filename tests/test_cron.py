"""kfpkit.cron: one user syntax, checked, converted for KFP (6 fields) and Vertex AI (TZ=)."""

from __future__ import annotations

import pytest

from kfpkit import cron


@pytest.mark.parametrize(
    ("expr", "kubeflow", "vertex"),
    [
        ("*/15 9-17 * * MON-FRI", "0 */15 9-17 * * 1-5", "*/15 9-17 * * 1-5"),
        ("0 6 1 jan,JUL *", "0 0 6 1 1,7 *", "0 6 1 1,7 *"),
        ("0 0 * * 7", "0 0 0 * * 0", "0 0 * * 0"),
        ("0 0 * * 5-7", "0 0 0 * * 0,5,6", "0 0 * * 0,5,6"),
        ("@daily", "0 0 0 * * *", "0 0 * * *"),
        ("TZ=UTC 30 2 * * *", "0 30 2 * * *", "TZ=UTC 30 2 * * *"),
        ("  0-30/10 1,2 1-15/2 * SUN ", "0 0-30/10 1,2 1-15/2 * 0", "0-30/10 1,2 1-15/2 * 0"),
    ],
)
def test_conversions(expr: str, kubeflow: str, vertex: str) -> None:
    parsed = cron.parse(expr)
    assert parsed.kubeflow() == kubeflow
    assert parsed.vertex() == vertex


def test_time_zone_goes_to_vertex_and_is_refused_for_kubeflow() -> None:
    parsed = cron.parse("CRON_TZ=America/New_York 0 9 * * 1-5")
    assert parsed.vertex() == "TZ=America/New_York 0 9 * * 1-5"
    with pytest.raises(ValueError, match="TZ=America/New_York"):
        parsed.kubeflow()


@pytest.mark.parametrize(
    ("expr", "named"),
    [
        ("60 * * * *", "'60'"),
        ("* 24 * * *", "'24'"),
        ("* * 0 * *", "'0'"),
        ("* * * 13 *", "'13'"),
        ("* * * * 8", "'8'"),
        ("* * * *", "4 fields"),
        ("0 0 0 * * *", "6 fields"),
        ("0 0 * * FOO", "'FOO'"),
        ("0 0 * JANUARY *", "'JANUARY'"),
        ("0 0 31-1 * *", "'31-1'"),
        ("*/0 * * * *", "'*/0'"),
        ("5/15 * * * *", "'5/15'"),
        ("0 0 ? * *", "'?'"),
        ("0 0 L * *", "'L'"),
        ("@sometimes", "'@sometimes'"),
        ("TZ=Mars/Olympus 0 0 * * *", "'Mars/Olympus'"),
        ("TZ= 0 0 * * *", "TZ="),
        ("0,,5 * * * *", "''"),
    ],
)
def test_invalid_crons_name_the_bad_part(expr: str, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("?", r"\?").replace("*", r"\*")):
        cron.parse(expr)
