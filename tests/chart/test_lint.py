"""helm lint --strict on both charts, with the real helm binary."""

import pytest

from local_stack import chart


def test_exporter_chart_lints_strict():
    output = chart.helm("lint", "--strict", str(chart.EXPORTER_CHART))
    assert "0 chart(s) failed" in output


def test_umbrella_chart_lints_strict(tmp_path):
    """Rendered from a copy without the kube-prometheus-stack entry unless that chart is
    available (see local_stack.chart); the subchart link is resolved in the copy."""
    umbrella = chart.prepare_umbrella(tmp_path)
    assert (umbrella / "charts" / "model-exporter" / "Chart.yaml").is_file()
    output = chart.helm("lint", "--strict", str(umbrella))
    assert "0 chart(s) failed" in output


def test_a_lint_failure_is_reported_with_helms_words(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "Chart.yaml").write_text("apiVersion: v2\nname: broken\n")
    with pytest.raises(chart.ChartError, match=r"\[ERROR\] Chart.yaml: version is required"):
        chart.helm("lint", "--strict", str(broken))
