"""The canary split through the router the chart renders, with the two exporters behind it.

Shares are judged against a 99.9 % binomial bound; the client's count (from the X-Model-Variant
header) and Prometheus's (from the router's counters) must agree request for request.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from backends import Backend
from modelmon.contract import VARIANT_HEADER, Variant, variant_of_prediction
from modelmon.ops.load import feedback_headers
from support import eventually, within_binomial_bound

ROW = {f"x{i}": 0.5 for i in range(1, 11)}
N = 2000
CLIENTS = 16

_sessions = threading.local()


def session() -> requests.Session:
    if not hasattr(_sessions, "value"):
        _sessions.value = requests.Session()
    return _sessions.value  # type: ignore[no-any-return]


def predict(url: str, headers: dict[str, str] | None = None, body: dict | None = None):
    response = session().post(
        f"{url}/predict", json=body or {"features": ROW}, headers=headers or {}, timeout=30
    )
    return response.status_code, response.headers.get("X-Model-Variant"), response


def prometheus_counts(backend: Backend) -> dict[str, float]:
    query = (
        f'sum by (variant) (router_requests_total{{route="predict",'
        f'namespace="{backend.namespace}"}})'
    )
    return backend.prometheus.by_label(query, "variant")


@pytest.fixture
def router_unchanged(backend: Backend) -> Iterator[None]:
    """The test must not restart the router: weight changes apply in place."""
    before = backend.router_instance()
    yield
    assert backend.router_instance() == before


@pytest.mark.usefixtures("router_unchanged")
@pytest.mark.parametrize("weight", [10, 50, 100])
def test_split_honours_the_weight_client_side_and_in_prometheus(backend: Backend, weight: int):
    backend.set_weight(weight)
    url = backend.url("router")
    before = prometheus_counts(backend)
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda _: predict(url)[:2], range(N)))
    assert {code for code, _ in results} == {200}
    seen = Counter(variant for _, variant in results)
    assert within_binomial_bound(seen["canary"], N, weight / 100), f"canary {seen['canary']}/{N}"
    after = eventually(
        lambda: prometheus_counts(backend),
        lambda now: sum(now.values()) - sum(before.values()) >= N,
        20 * backend.patience,
        "Prometheus counted every request",
    )
    for variant in ("stable", "canary"):
        assert after.get(variant, 0) - before.get(variant, 0) == seen[variant], variant


def test_sticky_users_keep_their_variant(backend: Backend):
    backend.set_weight(50)
    url = backend.url("router")
    users = [f"user{index:03d}" for index in range(100)]
    by_header = {u: {predict(url, {"X-User-ID": u})[1] for _ in range(4)} for u in users}
    assert all(len(variants) == 1 for variants in by_header.values()), by_header
    by_body = {u: predict(url, body={"features": ROW, "user_id": u})[1] for u in users}
    assert by_body == {u: variants.pop() for u, variants in by_header.items()}
    canary_users = sum(v == "canary" for v in by_body.values())
    assert 0 < canary_users < len(users)


@pytest.mark.usefixtures("router_unchanged")
def test_weight_change_takes_effect_without_a_restart(backend: Backend):
    for weight, expected in ((0, {"stable"}), (100, {"canary"}), (0, {"stable"})):
        backend.set_weight(weight)
        url = backend.url("router")
        assert {predict(url)[1] for _ in range(50)} == expected


def test_feedback_reaches_the_variant_that_served(backend: Backend):
    """With the header a gateway route matches, without it, and with a wrong one: through the
    router, feedback goes by the prediction id, so each of the three lands where it belongs."""
    backend.set_weight(50)
    url = backend.url("router")
    served: Counter[str] = Counter()
    for attempt in range(30):
        _, variant, response = predict(url)
        assert variant is not None
        served[variant] += 1
        [prediction] = response.json()["predictions"]
        assert variant_of_prediction(prediction["prediction_id"]) == variant
        other = next(v for v in Variant if v != variant)
        header = [feedback_headers(prediction["prediction_id"]), {}, {VARIANT_HEADER: other}]
        feedback = session().post(
            f"{url}/feedback",
            timeout=10,
            headers=header[attempt % 3],
            json={"prediction_id": prediction["prediction_id"], "actual": prediction["prediction"]},
        )
        assert feedback.status_code == 200, feedback.text
        assert feedback.headers[VARIANT_HEADER] == variant
    assert set(served) == set(Variant), served


def test_killing_the_canary_under_load_loses_no_request(backend: Backend):
    backend.set_weight(50)
    url = backend.url("router")
    stop_at = time.monotonic() + 4 * backend.patience
    results: list[tuple[int, str | None]] = []
    failed: list[str] = []

    def load() -> None:
        while time.monotonic() < stop_at:
            code, variant, response = predict(url)
            results.append((code, variant))
            if code != 200:
                failed.append(f"{code} {response.text[:300]}")

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(load) for _ in range(8)]
            time.sleep(1.5)
            with backend.exporter_killed("canary"):
                for future in futures:
                    future.result()
        codes = Counter(code for code, _ in results)
        assert codes == {200: len(results)}, (codes, failed)
        assert len(results) > 100
        assert Counter(v for _, v in results)["stable"] > 0
        failovers = requests.get(f"{backend.url('router')}/metrics", timeout=5).text
        assert 'router_failovers_total{from_variant="canary",to_variant="stable"' in failovers
    finally:
        backend.set_weight(10)
