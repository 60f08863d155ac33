"""The HTML reports render in a real headless browser (Debian's chromium) with the network off."""

from __future__ import annotations

import re
import shutil
import subprocess

import pyarrow as pa
import pytest

from kfpkit.testing import tfdv as tfdv_testing
from kfpkit.tfdv import report
from kfpkit.tfdv.schema import infer_schema
from kfpkit.tfdv.validation import Thresholds, measurements, validate

# Every host resolves to nothing and every proxy is a dead port: no fetch can succeed.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]


def render(path) -> str:
    """The DOM chromium built from the page (after layout), or a failure if none is installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium is needed to test the HTML reports (apt-get install chromium)"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         *OFFLINE, "--dump-dom", f"file://{path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def rows_of(dom: str, table_id: str) -> list[str]:
    table = re.search(rf"<table id=\"{table_id}\">(.*?)</table>", dom, re.S)
    assert table, f"no table {table_id} in the rendered page"
    return re.findall(r"<tr><td[^>]*>([^<]*)</td>", table.group(1))


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    return tfdv_testing.statistics_of(tfdv_testing.sample(), tmp_path_factory.mktemp("s"))


def test_pages_fetch_nothing():
    page = report.page("t", "s", "<p>x</p>")
    assert "<script" not in page and not re.search(r"(src|href)=", page)
    assert "default-src 'none'" in page


def test_statistics_report_renders_every_feature(stats, tmp_path):
    path = tmp_path / "stats.html"
    path.write_text(report.statistics_html(stats, "Statistics of train"))
    dom = render(path)
    assert "Statistics of train" in dom
    assert sorted(rows_of(dom, "numeric-features")) == ["AGEP", "employed", "id", "year"]
    assert len(rows_of(dom, "categorical-features")) == 15
    assert dom.count("<rect") >= 4 * 10  # histograms drawn


def test_anomalies_report_renders_anomalies_and_drift(stats, tmp_path):
    table = tfdv_testing.sample()
    sex = table["SEX"].to_pylist()
    sex[:4] = ["7"] * 4
    changed = table.set_column(table.schema.get_field_index("SEX"), "SEX", pa.array(sex))
    changed_stats = tfdv_testing.statistics_of(changed, tmp_path)
    anomalies = validate(changed_stats, infer_schema(stats), baseline=stats,
                         drift=Thresholds(categorical=0.001))  # fmt: skip
    rows = [(m.feature, m.kind, m.measure, m.value, m.threshold) for m in measurements(anomalies)]
    path = tmp_path / "anomalies.html"
    path.write_text(report.anomalies_html(anomalies, rows, "Data validation"))
    dom = render(path)
    assert rows_of(dom, "anomalies") == ["SEX"]
    assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in dom and "COMPARATOR_L_INFTY_HIGH" in dom
    assert "SEX" in rows_of(dom, "comparisons")


def test_no_anomalies_says_so(stats, tmp_path):
    anomalies = validate(stats, infer_schema(stats))
    path = tmp_path / "clean.html"
    path.write_text(report.anomalies_html(anomalies, [], "Data validation"))
    assert "No anomalies found." in render(path)
