"""Router settings from flags, each with an environment-variable default (MODELMON_ROUTER_*)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelmon import __version__
from modelmon.flags import Flag, add_flags, non_negative_float, port_number, positive_int

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
    max_body_bytes: int


FLAGS = (
    Flag("--host", "address to listen on", "0.0.0.0"),  # noqa: S104  # nosec B104 - the pod IP
    Flag("--port", "port to listen on", "8080", {"type": port_number}),
    Flag("--stable-url", "base URL of the stable exporter", "http://localhost:8081"),
    Flag("--canary-url", "base URL of the canary exporter", "http://localhost:8082"),
    Flag(
        "--weight-file",
        "file holding the canary weight, 0..100",
        "/etc/modelmon/canary/weight",
        {"type": Path},
    ),
    Flag("--user-id", "static user_id label of the router's metrics", "default"),
    Flag("--user-header", "request header that names the user, for sticky routing", "X-User-ID"),
    Flag(
        "--max-body-bytes",
        "request bodies larger than this are refused (413) before they are forwarded",
        "1048576",
        {"type": positive_int},
    ),
    Flag(
        "--timeout-seconds",
        "time allowed for an exporter to answer",
        "10",
        {"type": non_negative_float},
    ),
)


def parse_router_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> RouterSettings:
    parser = argparse.ArgumentParser(
        prog="modelmon-router",
        description="Send each prediction to the stable or the canary exporter, by the weight "
        "in --weight-file (0..100, re-read when it changes), sticky per user when the request "
        "names one.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_flags(parser, os.environ if environ is None else environ, ENV_PREFIX, FLAGS)
    args = parser.parse_args(argv)
    for flag in ("stable_url", "canary_url"):
        if not str(getattr(args, flag)).startswith(("http://", "https://")):
            parser.error(f"--{flag.replace('_', '-')}: must be an http(s) URL")
    return RouterSettings(
        **{name: getattr(args, name) for name in RouterSettings.__dataclass_fields__}
    )
