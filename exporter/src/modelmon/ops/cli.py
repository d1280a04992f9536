"""modelmon-ops: one command line for the operator's loop around a deployed model.

Every subcommand but serve-webhook takes the same target flags (--prometheus-url, --user,
--namespace, --url), each also read from MODELMON_OPS_<FLAG>. Failures end in one line on stderr:
exit 2 for an error, and for ab-test 1 when the canary is worse and 3 when the sample is too
small for a verdict.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from modelmon import __version__
from modelmon.ops.commands import COMMANDS
from modelmon.ops.errors import OpsError


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon-ops",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="The GitHub token is read from GITHUB_TOKEN (never a flag, so it stays out of "
        "shell history and process lists).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(commands, env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(os.environ).parse_args(argv)
    try:
        return int(args.run(args, os.environ))
    except OpsError as exc:
        print(f"modelmon-ops {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"modelmon-ops {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
