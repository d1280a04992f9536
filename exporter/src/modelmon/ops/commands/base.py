"""What every modelmon-ops command shares: its declaration, the target flags, the output."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from modelmon.flags import Flag, add_flags, port_number
from modelmon.ops.errors import OpsError
from modelmon.ops.prometheus import Scope

ENV_PREFIX = "MODELMON_OPS_"
USER_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9_]*[a-z0-9])?")

Run = Callable[[argparse.Namespace, Mapping[str, str]], int]
AddFlags = Callable[[argparse.ArgumentParser, Mapping[str, str]], None]


def user_id(text: str) -> str:
    if not USER_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a user id like user07")
    return text


# The lab names its user by number (`export USER_NUM=07`); --user and MODELMON_OPS_USER win.
LAB_USER_NUMBER = "USER_NUM"


def with_lab_user(env: Mapping[str, str]) -> Mapping[str, str]:
    """The environment, with MODELMON_OPS_USER taken from the lab's USER_NUM when only that is
    set: 7 or 07 is user07. Anything else is passed on as it is, for --user to refuse by name."""
    number = env.get(LAB_USER_NUMBER, "").strip()
    user_variable = f"{ENV_PREFIX}USER"
    if not number or user_variable in env:
        return env
    user = f"user{int(number):02d}" if number.isdigit() else f"{LAB_USER_NUMBER}={number}"
    return {**env, user_variable: user}


# Which model server and Prometheus a command works on; every flag also reads MODELMON_OPS_<FLAG>.
TARGET_FLAGS = (
    Flag("--prometheus-url", "Prometheus base URL", "http://127.0.0.1:9090"),
    Flag(
        "--user",
        f"the release's user_id label (default from the lab's {LAB_USER_NUMBER}: 07 is user07)",
        "user01",
        {"type": user_id},
    ),
    Flag("--namespace", "only series from this namespace (default: any)", ""),
    Flag("--url", "the router's (or an exporter's) base URL", "http://127.0.0.1:8080"),
)

# Where a command that serves HTTP listens.
LISTEN_FLAGS = (
    Flag("--host", "address to listen on", "0.0.0.0"),  # noqa: S104  # nosec B104 - the pod IP
    Flag("--port", "port to listen on", "8080", {"type": port_number}),
)


def no_flags(_parser: argparse.ArgumentParser, _env: Mapping[str, str]) -> None:
    pass


@dataclass(frozen=True)
class Command:
    """A subcommand: its name and help, the flags it declares, and what it runs."""

    name: str
    help: str
    run: Run
    flags: AddFlags = no_flags
    targets: bool = True  # takes TARGET_FLAGS

    def add_to(self, commands: argparse._SubParsersAction, env: Mapping[str, str]) -> None:  # type: ignore[type-arg]
        parser = commands.add_parser(self.name, help=self.help)
        if self.targets:
            target = parser.add_argument_group("target")
            add_flags(target, with_lab_user(env), ENV_PREFIX, TARGET_FLAGS)
        self.flags(parser, env)
        parser.set_defaults(run=self.run)


stderr = Console(stderr=True)


def say(line: str) -> None:
    print(line, flush=True)


def say_all(lines: list[str]) -> None:
    for line in lines:
        say(line)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (drawn only on a terminal); yields the per-item callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)


def scope_of(args: argparse.Namespace) -> Scope:
    return Scope(args.user, args.namespace or None)


def url_of(args: argparse.Namespace) -> str:
    url = str(args.url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise OpsError(f"--url {args.url!r}: must be an http(s) URL")
    return url


def default_state_file() -> str:
    return str(Path.home() / ".cache" / "modelmon-ops" / "retrain-cooldown.json")
