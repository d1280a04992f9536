"""Every modelmon-ops command the README shows parses as written: a newcomer copies them."""

from __future__ import annotations

import re
import shlex

import pytest

from local_stack.toolchain import REPO_ROOT
from modelmon.ops.cli import build_parser

README = REPO_ROOT / "README.md"


def shown_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("modelmon-ops"):
                commands.append(line)
    return commands


def test_the_readme_shows_commands_of_every_kind():
    assert len(shown_commands()) >= 15


@pytest.mark.parametrize("line", shown_commands())
def test_each_shown_command_parses(line):
    words = shlex.split(line, comments=True)
    build_parser({}).parse_args(words[1:])
