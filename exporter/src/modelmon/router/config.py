"""Router settings from flags, each with an environment-variable default (MODELMON_ROUTER_*)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelmon.config import add_env_option, non_negative_float, port_number

ENV_PREFIX = "MODELMON_ROUTER_"


@dataclass(frozen=True)
class RouterSettings:
    host: str
    port: int
    stable_url: str
    canary_url: str
    weight_file: Path
    user_id: str
    user_header: str
    timeout_seconds: float


def parse_router_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> RouterSettings:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="modelmon-router",
        description="Send each prediction to the stable or the canary exporter, by the weight "
        "in --weight-file (0..100, re-read when it changes), sticky per user when the request "
        "names one.",
    )

    def option(flag: str, help_text: str, default: str, **kwargs: object) -> None:
        add_env_option(parser, env, ENV_PREFIX, flag, help_text, default, **kwargs)

    option("--host", "address to listen on", "0.0.0.0")  # noqa: S104  # nosec B104 - the pod IP
    option("--port", "port to listen on", "8080", type=port_number)
    option("--stable-url", "base URL of the stable exporter", "http://localhost:8081")
    option("--canary-url", "base URL of the canary exporter", "http://localhost:8082")
    option(
        "--weight-file",
        "file holding the canary weight, 0..100",
        "/etc/modelmon/canary/weight",
        type=Path,
    )
    option("--user-id", "static user_id label of the router's metrics", "default")
    option("--user-header", "request header that names the user, for sticky routing", "X-User-ID")
    option(
        "--timeout-seconds", "time allowed for an exporter to answer", "10", type=non_negative_float
    )
    args = parser.parse_args(argv)
    for flag in ("stable_url", "canary_url"):
        if not str(getattr(args, flag)).startswith(("http://", "https://")):
            parser.error(f"--{flag.replace('_', '-')}: must be an http(s) URL")
    return RouterSettings(
        **{name: getattr(args, name) for name in RouterSettings.__dataclass_fields__}
    )
