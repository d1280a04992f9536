"""The Kubernetes versions the chart tests render and validate for are versions the charts
declare they support (Chart.yaml's kubeVersion), read as helm reads that constraint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from local_stack import chart
from manifest_checks import KUBERNETES_VERSIONS, STACK_OFF

CHARTS = (chart.UMBRELLA, chart.EXPORTER_CHART)
# helm's constraints (Masterminds semver) as far as the charts use them: comparisons, joined
# by commas or spaces (and), alternatives joined by || (or).
_OPERATOR = r"!=|>=|<=|=<|=>|>|<|="
_COMPARISON = re.compile(rf"(?P<op>{_OPERATOR})?v?(?P<version>\d+(?:\.\d+){{0,2}})(?P<pre>-\S+)?")
_OPERATORS = {None: "==", "=": "==", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "=>": ">="}
_OPERATORS |= {"<=": "<=", "=<": "<="}


def kube_version_constraint(chart_dir: Path) -> str:
    return str(yaml.safe_load((chart_dir / "Chart.yaml").read_text())["kubeVersion"])


def satisfies(version: str, constraint: str) -> bool:
    """Whether a Kubernetes version (X.Y.Z) meets a Chart.yaml kubeVersion constraint.

    `-0` on a bound is helm's idiom for "pre-releases too" (so that a provider's 1.30.0-gke.1
    counts): the lowest pre-release of that version, PEP 440's `.dev0`. Wildcards, ~, ^ and
    hyphen ranges are refused rather than guessed at."""
    for alternative in constraint.split("||"):
        specifiers = []
        joined = re.sub(rf"({_OPERATOR})\s+", r"\1", alternative.strip())  # ">= 1.25" too
        for text in re.split(r"[\s,]+", joined):
            match = _COMPARISON.fullmatch(text)
            if not match:
                raise ValueError(f"kubeVersion {constraint!r}: {text!r} is not a plain comparison")
            pre = match["pre"]
            if pre not in (None, "-0"):
                raise ValueError(f"kubeVersion {constraint!r}: pre-release {pre!r} is not -0")
            bound = match["version"] + (".dev0" if pre else "")
            specifiers.append(f"{_OPERATORS[match['op']]}{bound}")
        if SpecifierSet(",".join(specifiers), prereleases=True).contains(version):
            return True
    return False


def test_satisfies_reads_constraints_as_helm_does():
    assert satisfies("1.25.0", ">=1.25.0-0")
    assert not satisfies("1.24.9", ">=1.25.0-0")
    assert satisfies("1.30.0", ">= 1.25.0-0, < 1.36.0-0")
    assert not satisfies("1.36.0", ">=1.25.0-0 <1.36.0-0")
    assert satisfies("1.20.0", ">=1.25.0 || =1.20.0")
    for unsupported in ("~1.30", "^1.30.0", "1.30.x", ">=1.30.0-alpha.1", "1.25 - 1.30"):
        with pytest.raises(ValueError, match="kubeVersion"):
            satisfies("1.30.0", unsupported)


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS, ids=lambda v: f"k8s{v}")
@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_every_tested_version_is_one_the_charts_support(chart_dir, kube_version):
    constraint = kube_version_constraint(chart_dir)
    assert satisfies(kube_version, constraint), f"{chart_dir.name}: kubeVersion {constraint}"


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_oldest_version_the_charts_take_is_tested(chart_dir):
    """No promise goes untested: the minor release before the oldest tested one is refused."""
    major, minor, _ = KUBERNETES_VERSIONS[0].split(".")
    constraint = kube_version_constraint(chart_dir)
    assert not satisfies(f"{major}.{int(minor) - 1}.99", constraint), constraint


@pytest.mark.parametrize("kube_version", ["1.29.0", "1.30.0"], ids=lambda v: f"k8s{v}")
@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_helm_agrees_which_versions_the_charts_take(umbrella, chart_dir, kube_version):
    """satisfies() is checked against helm itself at the charts' lower bound."""
    source = umbrella if chart_dir == chart.UMBRELLA else chart_dir
    set_values = STACK_OFF if chart_dir == chart.UMBRELLA else None

    def render() -> None:
        chart.render(
            source, release="r1", namespace="n", set_values=set_values, kube_version=kube_version
        )

    if satisfies(kube_version, kube_version_constraint(chart_dir)):
        render()
    else:
        with pytest.raises(chart.ChartError, match="kubeVersion"):
            render()
