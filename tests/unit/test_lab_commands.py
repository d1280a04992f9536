"""The lab's spellings of modelmon-ops: USER_NUM, --drift-level, the trigger's two lines, and how
many undrifted predictions a reset needs."""

from __future__ import annotations

import pytest

from modelmon.contract import Variant
from modelmon.ops.cli import build_parser
from modelmon.ops.commands.base import with_lab_user
from modelmon.ops.commands.retraining import lab_lines
from modelmon.ops.simulate import Refill


@pytest.mark.parametrize(("number", "user"), [("7", "user07"), ("07", "user07"), ("12", "user12")])
def test_the_labs_user_number_names_the_user(number, user):
    args = build_parser(with_lab_user({"USER_NUM": number})).parse_args(["gate"])
    assert args.user == user


def test_an_explicit_user_wins_over_the_labs_number():
    env = {"USER_NUM": "7", "MODELMON_OPS_USER": "user03"}
    assert build_parser(with_lab_user(env)).parse_args(["gate"]).user == "user03"
    flag = build_parser(with_lab_user({"USER_NUM": "7"})).parse_args(["gate", "--user", "user05"])
    assert flag.user == "user05"


def test_a_user_number_that_is_no_number_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        build_parser(with_lab_user({"USER_NUM": "seven"})).parse_args(["gate"])
    assert "'USER_NUM=seven' is not a user id like user07" in capsys.readouterr().err


def test_drift_level_is_the_labs_name_for_level():
    parser = build_parser({})
    lab = parser.parse_args(["simulate-drift", "--drift-level", "high"])
    ours = parser.parse_args(["simulate-drift", "--level", "high"])
    assert lab.level == ours.level == "high"
    assert not lab.reset


def test_the_triggers_lab_lines():
    assert lab_lines(True, 0.11223) == ["Detected: True", "Score: 0.1122"]
    assert lab_lines(False, None) == ["Detected: False", "Score: n/a"]


def test_a_reset_refills_the_window_of_the_variant_with_the_smallest_share():
    stable, canary = str(Variant.STABLE), str(Variant.CANARY)
    refill = Refill({stable: 1000, canary: 500}, {stable: 0.9, canary: 0.1})
    assert refill.rows == 5000  # the canary's 500 rows at 10 %
    assert refill.starved == []
    starved = Refill({stable: 1000, canary: 1000}, {stable: 1.0, canary: 0.0})
    assert starved.rows == 1000
    assert starved.starved == [canary]
    assert "canary 1000 rows at 0%" in starved.line()
    listed = Refill({canary: 5, stable: 7}, {canary: 0.5, stable: 0.5}).line()
    assert listed.index(stable) < listed.index(canary), "stable first, whatever the order read"
