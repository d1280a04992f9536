"""A real Prometheus server for the local stack; modelmon.ops.prometheus is its client."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from local_stack.pods import LOOPBACK
from local_stack.processes import ManagedProcess, Supervisor
from local_stack.toolchain import require


def write_config(
    path: Path,
    scrape_configs: Sequence[dict[str, Any]],
    *,
    evaluation_interval: str,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
) -> bool:
    """Writes the configuration; whether it differs from what the file held."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "15s", "evaluation_interval": evaluation_interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": list(scrape_configs),
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    text = yaml.safe_dump(config, sort_keys=False)
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def start(supervisor: Supervisor, config: Path, data_dir: Path, port: int) -> ManagedProcess:
    binary = require("prometheus")
    argv = [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    return supervisor.start("prometheus", argv)
