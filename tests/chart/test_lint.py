"""helm lint --strict on both charts, with the real helm binary."""

import shutil

import pytest

from local_stack import chart


@pytest.mark.parametrize(
    "values",
    [None, *sorted((chart.EXPORTER_CHART / "ci").glob("*-values.yaml"))],
    ids=lambda v: v.name if v else "defaults",
)
def test_exporter_chart_lints_strict(values):
    """With its defaults and with each ci/ profile ct installs it with."""
    extra = ["--values", str(values)] if values else []
    output = chart.helm("lint", "--strict", str(chart.EXPORTER_CHART), *extra)
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


def _dependency_build(chart_dir):
    try:
        chart.helm("dependency", "build", str(chart_dir))
    except chart.ChartError as error:
        return str(error)
    return ""


def test_chart_lock_is_in_sync_with_chart_yaml(tmp_path):
    """helm checks the lock's digest before it fetches anything: whatever happens next (a
    download, or no network here), it must not call the lock out of sync."""
    copy = tmp_path / "model-monitoring"
    shutil.copytree(chart.UMBRELLA, copy, symlinks=False)
    assert "out of sync" not in _dependency_build(copy)
    chart_yaml = copy / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 88.5.3", "version: 88.5.2"))
    assert "out of sync" in _dependency_build(copy)
