"""The report's page and views without Prometheus: the same blocks as Markdown and as one
self-contained HTML file, alert spans joined from the ALERTS series' points, and the drift table
naming the features over the threshold."""

from __future__ import annotations

import base64
from pathlib import Path

from modelmon.ops.prometheus import Series
from modelmon.ops.report import (
    AlertSpan,
    Code,
    Heading,
    Image,
    Table,
    Text,
    alert_spans,
    drift_table,
    features_over,
    to_html,
    to_markdown,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_the_same_blocks_are_written_as_markdown_and_as_html(tmp_path: Path) -> None:
    (tmp_path / "plot.png").write_bytes(PNG)
    blocks = [
        Heading(2, "Drift <now>"),
        Text("a & b"),
        Code(("  stable 0.25",)),
        Table(("series", "now"), (("stable", "1"),), (False, True)),
        Image("A plot", "plot.png"),
    ]
    assert to_markdown(blocks) == "\n".join(
        [
            "## Drift <now>",
            "",
            "a & b",
            "",
            "```",
            "  stable 0.25",
            "```",
            "",
            "| series | now |",
            "|---|---:|",
            "| stable | 1 |",
            "",
            "![A plot](plot.png)",
            "",
        ]
    )
    page = to_html(blocks, "Report", tmp_path)
    assert "<h2>Drift &lt;now&gt;</h2>" in page
    assert "<p>a &amp; b</p>" in page
    assert "<tr><th>series</th><th class=num>now</th></tr>" in page
    assert "<td>stable</td><td class=num>1</td>" in page
    embedded = f'<img alt="A plot" src="data:image/png;base64,{base64.b64encode(PNG).decode()}">'
    assert embedded in page
    assert "plot.png" not in page  # nothing linked: the page stands alone


def test_alert_points_a_step_apart_are_one_span_and_a_gap_starts_another() -> None:
    series = Series(
        {"alertstate": "pending"}, [(100.0, 1.0), (102.0, 1.0), (104.0, 1.0), (120.0, 1.0)]
    )
    assert alert_spans(series, step=2.0, end=121.0) == [
        AlertSpan("pending", 100.0, 106.0),
        AlertSpan("pending", 120.0, 121.0),  # not past the end of the window
    ]
    assert alert_spans(Series({}, []), 2.0, 10.0) == []


def test_the_drift_table_names_the_features_over_the_threshold() -> None:
    scores = {"x1": {"stable": 0.4, "canary": 0.1}, "x2": {"canary": 0.05}}
    table = drift_table(scores, 0.25)
    assert table.header == ("feature", "stable", "canary")
    assert table.rows == (("x1", "0.400 over", "0.100"), ("x2", "-", "0.050"))
    assert features_over(scores, 0.25) == ["x1"]
    assert features_over(scores, None) == []
    assert drift_table(scores, None).rows[0] == ("x1", "0.400", "0.100")
