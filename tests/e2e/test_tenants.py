"""Users attached to one stack are kept apart at run time: three users (one of them with a
lower MAE threshold) on the platform's Prometheus and Alertmanager, each sent predictions whose
ground truth is off by a fixed error.

    user11  error 1.00, default threshold 0.40: its model is degraded
    user12  error 0.25, its own threshold 0.10: the same traffic as user13, a stricter alert
    user13  error 0.25, default threshold 0.40: quiet
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests
from tenancy import Tenancy

from modelmon.contract import RETRAIN_ACTION
from modelmon.ops.rows import Rows
from modelmon.ops.users import lab_namespace
from support import eventually
from traffic import Traffic, predictions_with_feedback

ALERT = "ModelPerformanceDegraded"
STRICT = {"rules": {"alerts": {ALERT: {"threshold": 0.10}}}}
USERS = {"user11": (1.00, {}), "user12": (0.25, STRICT), "user13": (0.25, {})}
FIRING = {"user11", "user12"}
VARIABLES = {"$__rate_interval": "30s", "$__range": "5m"}


@pytest.fixture(scope="module")
def users(tenancy: Tenancy) -> Iterator[Tenancy]:
    """The three users installed, each sent its traffic for as long as the module runs, and
    the two whose MAE passes their threshold alerted."""
    for user, (_error, overrides) in USERS.items():
        tenancy.install(user, overrides)
    with ExitStack() as traffic:
        for seed, (user, (error, _overrides)) in enumerate(USERS.items()):
            send = predictions_with_feedback(
                tenancy.url(user, "router"), Rows(seed=700 + seed), off_by=error
            )
            traffic.enter_context(Traffic(send, rate=8))
        for user in sorted(FIRING):
            eventually(
                lambda u=user: tenancy.delivered(u, ALERT),
                bool,
                90 * tenancy.patience,
                f"{ALERT} delivered to {user}'s receiver",
            )
        yield tenancy


def firing_users(tenancy: Tenancy, alertname: str) -> set[str]:
    return {
        sample.labels["user_id"]
        for sample in tenancy.prometheus.query(
            f'ALERTS{{alertname="{alertname}", alertstate="firing"}}'
        )
        if sample.labels.get("namespace", "").startswith("kubeflow-user1")
    }


def test_a_users_alerts_reach_that_users_receiver_only(users: Tenancy) -> None:
    for user in USERS:
        delivered = users.every_delivery(user)
        strangers = [
            a["labels"]
            for a in delivered
            if (a["labels"].get("namespace"), a["labels"].get("user_id"))
            != (lab_namespace(user), user)
        ]
        assert strangers == [], f"{user}'s receiver got other users' alerts"
    assert {a["labels"]["user_id"] for a in users.delivered("user11", ALERT)} == {"user11"}
    assert users.delivered("user13", ALERT) == []


def test_a_threshold_override_changes_that_users_alert_only(users: Tenancy) -> None:
    mae = {
        s.labels["user_id"]: s.value
        for s in users.prometheus.query('max by (user_id) (model:mae{user_id=~"user1[123]"})')
    }
    assert mae["user12"] == pytest.approx(0.25, abs=0.02)
    assert mae["user13"] == pytest.approx(mae["user12"], abs=0.02), "the same traffic"
    assert firing_users(users, ALERT) == FIRING
    queries = {
        user: rule["query"]
        for group in users.prometheus.rule_groups()
        for rule in group["rules"]
        for user in USERS
        if rule.get("name") == ALERT and f'user_id="{user}"' in rule["query"]
    }
    assert queries["user12"].endswith("> 0.1"), queries
    assert queries["user13"].endswith("> 0.4"), queries


def fill(expr: str, user: str) -> str:
    for variable, value in {**VARIABLES, "$user_id": user}.items():
        expr = expr.replace(variable, value)
    assert not re.findall(r"\$\{?\w+", expr), expr
    return expr


def test_each_users_dashboard_shows_that_users_series_only(users: Tenancy) -> None:
    for user in USERS:
        [dashboard] = users.dashboards(user).values()
        [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "user_id"]
        assert (variable["type"], variable["query"]) == ("constant", user)
        answered = 0
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                samples = users.prometheus.query(fill(target["expr"], user))
                answered += bool(samples)
                for sample in samples:
                    assert sample.labels.get("user_id", user) == user, (panel["title"], sample)
                    assert sample.labels.get("namespace", lab_namespace(user)) == lab_namespace(
                        user
                    )
        assert answered >= 8, f"{user}: only {answered} panel queries returned data"


def test_recording_rules_never_mix_users(users: Tenancy) -> None:
    recorded = {
        rule["name"]
        for group in users.prometheus.rule_groups()
        for rule in group["rules"]
        if rule["type"] == "recording"
    }
    assert {"model:mae", "model:predictions:rate"} <= recorded
    pairs = set()
    for name in sorted(recorded):
        for sample in users.prometheus.query(name):
            assert {"namespace", "user_id"} <= set(sample.labels), (name, sample.labels)
            pairs.add((sample.labels["namespace"], sample.labels["user_id"]))
    tenants = {pair for pair in pairs if pair[1] in USERS}
    assert tenants == {(lab_namespace(u), u) for u in USERS}
    namespaces = [namespace for namespace, _ in pairs]
    assert len(namespaces) == len(set(namespaces)), f"a namespace with two users: {pairs}"


def test_each_users_retrain_webhook_acts_for_that_user_with_its_own_cooldown(
    users: Tenancy,
) -> None:
    for user in FIRING:
        assert users.decisions(user).get("dry_run", 0) >= 1, user
        assert f"{user}: retrain needed" in users.webhook_log(user)
    assert users.decisions("user13").get("dry_run", 0) == 0
    for user in USERS:
        others = [u for u in USERS if u != user]
        assert not any(f"{other}: retrain" in users.webhook_log(user) for other in others)
    # user11 was just retrained (in this dry run): held by its cooldown; user13, asked in its
    # own webhook, is not held by anyone else's.
    for user, expected in (("user11", "cooldown"), ("user13", "dry_run")):
        payload = {
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "ModelR2Low",
                        "action": RETRAIN_ACTION,
                        "measure": "r2",
                        "namespace": lab_namespace(user),
                        "user_id": user,
                        "variant": "stable",
                    },
                    "annotations": {"value": "0.1", "threshold": "0.75"},
                    "startsAt": "2026-01-01T00:00:00Z",
                }
            ]
        }
        answer = requests.post(
            f"{users.url(user, 'retrain-webhook')}/alerts",
            json=payload,
            headers={"Authorization": f"Bearer {users.tokens[user]}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        [decision] = answer.json()["decisions"]
        assert (decision["user_id"], decision["action"]) == (user, expected), decision


def test_uninstalling_a_user_leaves_the_others_working(users: Tenancy) -> None:
    users.install("user14", {})
    eventually(
        lambda: {s.labels["namespace"] for s in users.prometheus.query("up == 1")},
        lambda found: lab_namespace("user14") in found,
        60 * users.patience,
        "user14 scraped",
    )
    users.uninstall("user14")
    # Prometheus's targets, not `up`: the last samples of a removed target can stay within the
    # query lookback (seen here for targets whose pods had stopped before the reload).
    eventually(
        lambda: {t["labels"].get("namespace") for t in users.prometheus.targets()},
        lambda found: lab_namespace("user14") not in found,
        60 * users.patience,
        "user14's targets gone",
    )
    assert not [
        g for g in users.prometheus.rule_groups() if "user14" in str(g.get("file", g["name"]))
    ]
    up = {s.labels["namespace"] for s in users.prometheus.query("up == 1")}
    assert {lab_namespace(u) for u in USERS} <= up
    assert firing_users(users, ALERT) == FIRING
    test_each_users_dashboard_shows_that_users_series_only(users)
