"""The modelmon-ops subcommands, in the order `--help` lists them."""

from __future__ import annotations

from modelmon.ops.commands import analysis, delivery, retraining, traffic, users
from modelmon.ops.commands.base import Command

COMMANDS: tuple[Command, ...] = (
    *traffic.COMMANDS,
    *analysis.COMMANDS,
    *delivery.COMMANDS,
    *retraining.COMMANDS,
    *users.COMMANDS,
)
