"""The canary split on the local stack: the router and two exporters the chart renders.

Shares are judged against a 99.9 % binomial bound; the client's count (from the X-Model-Variant
header) and Prometheus's (from the router's counters) must agree request for request.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local_stack.processes import wait_until
from local_stack.stack import LocalStack
from support import within_binomial_bound

ROW = {f"x{i}": 0.5 for i in range(1, 11)}
N = 2000
CLIENTS = 16
ROUTER = "e2e-model-exporter-router-0"
CANARY_CONFIG_MAP = "e2e-model-exporter-canary"
PREDICTIONS = (
    'sum by (variant) (router_requests_total{route="predict",namespace="kubeflow-user01"})'
)

_sessions = threading.local()


def session() -> requests.Session:
    if not hasattr(_sessions, "value"):
        _sessions.value = requests.Session()
    return _sessions.value


def predict(url: str, headers: dict[str, str] | None = None, body: dict | None = None):
    response = session().post(
        f"{url}/predict", json=body or {"features": ROW}, headers=headers or {}, timeout=30
    )
    return response.status_code, response.headers.get("X-Model-Variant"), response


def router_url(stack: LocalStack) -> str:
    return stack.pod(ROUTER).url("http")


def set_weight(stack: LocalStack, weight: int) -> None:
    stack.update_config_map(CANARY_CONFIG_MAP, "weight", str(weight))
    url = router_url(stack)
    wait_until(
        lambda: requests.get(f"{url}/readyz", timeout=2).json()["canary_weight"] == weight,
        10,
        describe=f"router weight {weight}",
    )


def prometheus_counts(stack: LocalStack) -> dict[str, float]:
    return {
        r["metric"]["variant"]: float(r["value"][1]) for r in stack.prometheus.query(PREDICTIONS)
    }


@pytest.fixture
def router_pid(local_stack: LocalStack) -> int:
    process = local_stack.pod(ROUTER).process
    assert process is not None
    return process.pid


@pytest.mark.parametrize("weight", [10, 50, 100])
def test_split_honours_the_weight_client_side_and_in_prometheus(local_stack, router_pid, weight):
    set_weight(local_stack, weight)
    url = router_url(local_stack)
    before = prometheus_counts(local_stack)
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda _: predict(url)[:2], range(N)))
    assert {code for code, _ in results} == {200}
    seen = Counter(variant for _, variant in results)
    assert within_binomial_bound(seen["canary"], N, weight / 100), f"canary {seen['canary']}/{N}"

    def prometheus_saw_all() -> bool:
        now = prometheus_counts(local_stack)
        return sum(now.values()) - sum(before.values()) >= N

    wait_until(prometheus_saw_all, 20, describe="Prometheus counted every request")
    after = prometheus_counts(local_stack)
    for variant in ("stable", "canary"):
        assert after.get(variant, 0) - before.get(variant, 0) == seen[variant], variant
    assert local_stack.pod(ROUTER).process.pid == router_pid


def test_sticky_users_keep_their_variant(local_stack):
    set_weight(local_stack, 50)
    url = router_url(local_stack)
    users = [f"user{index:03d}" for index in range(100)]
    by_header = {u: {predict(url, {"X-User-ID": u})[1] for _ in range(4)} for u in users}
    assert all(len(variants) == 1 for variants in by_header.values()), by_header
    by_body = {u: predict(url, body={"features": ROW, "user_id": u})[1] for u in users}
    assert by_body == {u: variants.pop() for u, variants in by_header.items()}
    canary_users = sum(v == "canary" for v in by_body.values())
    assert 0 < canary_users < len(users)


def test_weight_change_takes_effect_without_a_restart(local_stack, router_pid):
    url = router_url(local_stack)
    for weight, expected in ((0, {"stable"}), (100, {"canary"}), (0, {"stable"})):
        set_weight(local_stack, weight)
        assert {predict(url)[1] for _ in range(50)} == expected
    assert local_stack.pod(ROUTER).process.pid == router_pid


def test_feedback_reaches_the_variant_that_served(local_stack):
    set_weight(local_stack, 50)
    url = router_url(local_stack)
    for _ in range(20):
        _, variant, response = predict(url)
        [prediction] = response.json()["predictions"]
        feedback = session().post(
            f"{url}/feedback",
            timeout=10,
            json={"prediction_id": prediction["prediction_id"], "actual": prediction["prediction"]},
        )
        assert feedback.status_code == 200, feedback.text
        assert feedback.headers["X-Model-Variant"] == variant


def test_killing_the_canary_under_load_loses_no_request(local_stack):
    set_weight(local_stack, 50)
    url = router_url(local_stack)
    canary = local_stack.pod("e2e-model-exporter-canary-0")
    stop_at = time.monotonic() + 4
    results: list[tuple[int, str | None]] = []

    def load() -> None:
        while time.monotonic() < stop_at:
            code, variant, _ = predict(url)
            results.append((code, variant))

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(load) for _ in range(8)]
            time.sleep(1.5)
            assert canary.process is not None
            canary.process.signal(9)
            for future in futures:
                future.result()
        codes = Counter(code for code, _ in results)
        assert codes == {200: len(results)}, codes
        assert len(results) > 100
        assert Counter(v for _, v in results)["stable"] > 0
        failovers = requests.get(f"{url}/metrics", timeout=5).text
        assert 'router_failovers_total{from_variant="canary",to_variant="stable"' in failovers
    finally:
        local_stack.restart_pod("e2e-model-exporter-canary-0")
        set_weight(local_stack, 10)
