"""Command-line flags that also read an environment variable, and the value types they take.

Every entry point (exporter, router, modelmon-ops) declares its flags as a table of `Flag`s, so a
flag's name, help, default and type sit on one line each and the parser is built by one loop.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ParserLike = argparse.ArgumentParser | argparse._ArgumentGroup


@dataclass(frozen=True)
class Flag:
    """`--name`, whose default comes from the environment variable <prefix><NAME> when set.

    argparse runs string defaults through `type` too, so bad environment values are refused
    with the same message as bad flags.
    """

    name: str
    help: str
    default: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def env_name(self, prefix: str) -> str:
        return prefix + self.name.removeprefix("--").replace("-", "_").upper()

    def add_to(self, parser: ParserLike, environ: Mapping[str, str], prefix: str) -> None:
        env_name = self.env_name(prefix)
        parser.add_argument(
            self.name,
            default=environ.get(env_name, self.default),
            help=f"{self.help} [{env_name}]",
            **self.options,
        )


def add_flags(
    parser: ParserLike, environ: Mapping[str, str], prefix: str, flags: Iterable[Flag]
) -> None:
    for flag in flags:
        flag.add_to(parser, environ, prefix)


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    value = int(_number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {value}")
    return value


def finite_float(text: str) -> float:
    return _number(text, float)


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def ratio(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")
