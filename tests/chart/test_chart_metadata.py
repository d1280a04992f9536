"""Chart.yaml metadata as Artifact Hub and a user read it: icon, license, links, image and changes,
each held to its one source (a file of this repository, LICENSE and exporter/pyproject.toml,
.ci/image-ref, CHANGELOG.md). Each annotation is parsed the way Artifact Hub parses it
(artifacthub/hub, EnrichPackageFromAnnotations and ValidateChange): a YAML string holding a list
of links, images or changes, a change's kind one of added, changed, deprecated, removed, fixed,
security, and its description never empty."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from local_stack import chart
from local_stack.toolchain import REPO_ROOT

CHARTS = [chart.EXPORTER_CHART, chart.UMBRELLA]
CHANGELOG = REPO_ROOT / "CHANGELOG.md"
# Keep a Changelog 1.1.0's section names; Artifact Hub's change kinds are the same six, lower-case.
SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
CHANGE_KINDS = {section.lower() for section in SECTIONS}
KNOWN = {"changes", "images", "license", "links"}
VERSION_HEADER = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}$")
IMAGE_REF = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

Release = tuple[str, list[dict[str, str]]]


def metadata(chart_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((chart_dir / "Chart.yaml").read_text())


def image_ref() -> str:
    return subprocess.run(
        [str(REPO_ROOT / ".ci" / "image-ref")], capture_output=True, text=True, check=True
    ).stdout.strip()


# --- Artifact Hub's reading of the annotations -------------------------------------------------


def listed(annotations: dict[str, Any], key: str) -> tuple[list[Any], list[str]]:
    """The YAML list an annotation holds, or the reason Artifact Hub would reject it."""
    raw = annotations.get(f"artifacthub.io/{key}")
    if not isinstance(raw, str):
        return [], [f"{key}: not a YAML string"]
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        return [], [f"{key}: not YAML ({error.__class__.__name__})"]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return [], [f"{key}: not a list of mappings"]
    return value, []


def annotation_problems(annotations: dict[str, Any]) -> list[str]:
    problems = [
        f"unknown annotation {key}"
        for key in annotations
        if key.startswith("artifacthub.io/") and key.removeprefix("artifacthub.io/") not in KNOWN
    ]
    changes, found = listed(annotations, "changes")
    problems += found
    for change in changes:
        if change.get("kind") not in CHANGE_KINDS:
            problems.append(f"changes: kind {change.get('kind')!r} is not one of {CHANGE_KINDS}")
        if not isinstance(change.get("description"), str) or not change["description"].strip():
            problems.append(f"changes: {change!r} has no description")
    images, found = listed(annotations, "images")
    problems += found
    for image in images:
        if not image.get("name") or not IMAGE_REF.match(str(image.get("image", ""))):
            problems.append(f"images: {image!r} is not a name and a tagged image reference")
        elif str(image["image"]).endswith(":latest"):
            problems.append(f"images: {image['image']} is never scanned (latest)")
    links, found = listed(annotations, "links")
    problems += found
    for link in links:
        if not link.get("name") or urlparse(str(link.get("url"))).scheme != "https":
            problems.append(f"links: {link!r} is not a name and an https URL")
    if not re.fullmatch(r"[A-Za-z0-9.+-]+", str(annotations.get("artifacthub.io/license", ""))):
        problems.append("license: not an SPDX identifier")
    return problems


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_annotations_parse_as_artifact_hub_expects(chart_dir):
    assert annotation_problems(metadata(chart_dir).get("annotations", {})) == []


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_image_annotation_names_exactly_the_image_ci_builds(chart_dir):
    """.ci/image-ref: image.repository at the subchart's appVersion, as the release pushes it."""
    images, _ = listed(metadata(chart_dir)["annotations"], "images")
    assert [image["image"] for image in images] == [image_ref()]


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_license_is_the_one_the_package_and_license_file_declare(chart_dir):
    declared = metadata(chart_dir)["annotations"]["artifacthub.io/license"]
    package = tomllib.loads((REPO_ROOT / "exporter" / "pyproject.toml").read_text())
    assert declared == package["project"]["license"] == "Apache-2.0"
    license_text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_links_name_the_source_and_where_to_ask_for_help(chart_dir):
    meta = metadata(chart_dir)
    links, _ = listed(meta["annotations"], "links")
    named = {link["name"]: link["url"] for link in links}
    assert named == {"source": meta["home"], "support": f"{meta['home']}/issues"}
    assert meta["home"] in meta["sources"]


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_icon_is_an_svg_of_this_repository(chart_dir):
    """Served from the default branch of the repository `home` names, so the URL works once the
    file is merged."""
    meta = metadata(chart_dir)
    owner_repo = urlparse(meta["home"]).path.strip("/")
    prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
    assert meta["icon"].startswith(prefix), meta["icon"]
    icon = REPO_ROOT / meta["icon"].removeprefix(prefix)
    assert icon.suffix == ".svg"
    text = icon.read_text()
    assert re.search(r"<svg\b[^>]*\bxmlns=\"http://www\.w3\.org/2000/svg\"", text)
    assert re.search(r"\bviewBox=\"0 0 \d+ \d+\"", text)
    assert "<script" not in text


# --- CHANGELOG.md: Keep a Changelog, and the source of the changes annotation --------------------


def releases(text: str) -> list[Release]:
    """Each `## [...]` section in file order, with its entries as Artifact Hub changes (an entry
    continued on indented lines is one entry)."""
    found: list[Release] = []
    kind = ""
    for line in text.splitlines():
        if line.startswith("## ["):
            found.append((line.split("[", 1)[1].split("]", 1)[0], []))
            kind = ""
        elif line.startswith("### "):
            kind = line.removeprefix("### ").strip().lower()
        elif line.startswith("- ") and found:
            found[-1][1].append({"kind": kind, "description": line[2:].strip()})
        elif line.startswith("  ") and line.strip() and found and found[-1][1]:
            found[-1][1][-1]["description"] += " " + line.strip()
    return found


def changelog_problems(text: str) -> list[str]:
    lines = text.splitlines()
    problems = []
    if not lines or lines[0] != "# Changelog" or "keepachangelog.com/en/1.1.0" not in text:
        problems.append("does not open as a Keep a Changelog 1.1.0 file")
    headers = [line for line in lines if line.startswith("## ")]
    if not headers or headers[0] != "## [Unreleased]":
        problems.append("the first section is not ## [Unreleased]")
    versions = []
    for header in headers[1:]:
        match = VERSION_HEADER.match(header)
        if match is None:
            problems.append(f"{header!r} is not ## [X.Y.Z] - YYYY-MM-DD")
        else:
            versions.append(match["version"])
    keys = [tuple(int(n) for n in v.split("-")[0].split(".")) for v in versions]
    if keys != sorted(keys, reverse=True) or len(set(keys)) != len(keys):
        problems.append(f"versions are not newest first: {versions}")
    for line in lines:
        if line.startswith("### ") and line.removeprefix("### ") not in SECTIONS:
            problems.append(f"{line!r} is not one of Keep a Changelog's sections")
        if line.startswith(("- ", "  ")) and re.search(r"\b[0-9a-f]{7,40}\b", line):
            problems.append(f"a commit hash in {line.strip()!r}")
    for name in ["Unreleased", *versions]:
        if not re.search(rf"^\[{re.escape(name)}\]: https://\S+$", text, re.M):
            problems.append(f"no link for [{name}]")
    return problems


def changes_problems(annotation: str, version: str, changelog: str) -> list[str]:
    released = [release for release in releases(changelog) if release[0] != "Unreleased"]
    if not released or released[0][0] != version:
        return [f"the newest release in CHANGELOG.md is not {version}"]
    expected = released[0][1]
    given = yaml.safe_load(annotation)
    if given != expected:
        missing = [c["description"][:50] for c in expected if c not in given]
        extra = [c["description"][:50] for c in given if c not in expected]
        return [f"changes differ from CHANGELOG.md {version}: missing {missing}, extra {extra}"]
    return []


def test_the_changelog_keeps_a_changelogs_form():
    assert changelog_problems(CHANGELOG.read_text()) == []


@pytest.mark.parametrize("chart_dir", CHARTS, ids=lambda p: p.name)
def test_the_changes_are_the_changelogs_entries_for_the_charts_version(chart_dir):
    meta = metadata(chart_dir)
    annotation = meta["annotations"]["artifacthub.io/changes"]
    assert changes_problems(annotation, meta["version"], CHANGELOG.read_text()) == []


# --- the checks can fail -----------------------------------------------------------------------


def test_the_annotation_check_refuses_what_artifact_hub_refuses():
    good = metadata(chart.EXPORTER_CHART)["annotations"]
    assert annotation_problems(good) == []
    cases = {
        "artifacthub.io/changes": ("- kind: improved\n  description: x\n", "kind 'improved'"),
        "artifacthub.io/images": ("- name: x\n  image: ghcr.io/a/x:latest\n", "is never scanned"),
        "artifacthub.io/links": ("- name: x\n  url: http://x\n", "not a name and an https URL"),
        "artifacthub.io/license": ("Apache 2", "not an SPDX identifier"),
        "artifacthub.io/crds": ("[]", "unknown annotation"),
    }
    for key, (value, said) in cases.items():
        problems = annotation_problems({**good, key: value})
        assert any(said in problem for problem in problems), (key, problems)
    unquoted = "- kind: added\n  description: a: b: c\n"
    assert any(
        "not YAML" in p for p in annotation_problems({**good, "artifacthub.io/changes": unquoted})
    )


def test_the_changelog_checks_catch_a_drifted_annotation_and_a_bad_form():
    meta = metadata(chart.EXPORTER_CHART)
    annotation = meta["annotations"]["artifacthub.io/changes"]
    text = CHANGELOG.read_text()
    one_less = yaml.safe_dump(yaml.safe_load(annotation)[1:], allow_unicode=True)
    assert "missing" in " ".join(changes_problems(one_less, meta["version"], text))
    assert changes_problems(annotation, "9.9.9", text) == [
        "the newest release in CHANGELOG.md is not 9.9.9"
    ]
    broken = text.replace("### Fixed", "### Bug fixes").replace("## [Unreleased]\n", "")
    problems = " ".join(changelog_problems(broken))
    assert "'### Bug fixes' is not one of" in problems
    assert "the first section is not ## [Unreleased]" in problems
