"""The shared report kit: pages that fetch nothing, escaped text, charts that survive odd data."""

from __future__ import annotations

import math
import re

from kfpkit.runtime import html_report


def test_page_forbids_fetches_and_escapes():
    page = html_report.page("a <b>", "c & d", "<p>x</p>")
    assert "default-src 'none'" in page and "<script" not in page
    assert not re.search(r"(src|href)=", page) and "url(" not in page
    assert "<title>a &lt;b&gt;</title>" in page and "c &amp; d" in page


def test_table_cells_and_ids():
    row = [html_report.td(3, True), html_report.td("<x>", css="bad")]
    html = html_report.table(["n", "<h>"], [row], "t")
    assert html.startswith("<table id='t'>") and "<th>&lt;h&gt;</th>" in html
    assert "<td class='n'>3</td>" in html and "<td class='bad'>&lt;x&gt;</td>" in html


def test_line_chart_skips_non_finite_points_and_draws_scatters_without_lines():
    svg = html_report.line_chart(
        "t",
        {"a": [(1, 0.5), (2, math.nan), (3, 0.7)], "b": [(2, 0.6)]},
        "trial",
        lines={"b": False},
    )
    assert svg.count("<circle") == 3 and svg.count("<polyline") == 1
    assert "trial (1 to 3)" in svg and "nan" not in svg.lower().replace("aria-label", "")


def test_line_chart_without_values_says_so():
    assert html_report.line_chart("empty", {"a": [(1, math.inf)]}, "x") == "<p>empty: no values</p>"


def test_fmt():
    assert html_report.fmt(1234.0) == "1,234" and html_report.fmt(0.123456) == "0.1235"
    assert html_report.fmt(math.inf) == "inf"
