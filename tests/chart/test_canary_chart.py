"""The canary weight, rendered for the router, ingress-nginx and the Gateway API."""

from __future__ import annotations

import re

import pytest

from local_stack import manifests
from manifest_checks import render_attached, validation_errors


def render(umbrella, **values: str):
    return render_attached(umbrella, values)


@pytest.mark.parametrize("weight", ["0", "10", "50", "100"])
def test_the_router_reads_the_weight_from_its_config_map(umbrella, weight):
    objects = render(umbrella, **{"model-exporter.canary.weight": weight})
    [config_map] = [
        c
        for c in manifests.of_kind(objects, "ConfigMap")
        if c["metadata"]["name"] == "user07-model-exporter-canary"
    ]
    assert config_map["data"] == {"weight": weight}
    [router] = [w for w in manifests.workloads(objects) if w.name.endswith("-router")]
    [container] = router.containers
    assert "--weight-file=/etc/modelmon/canary/weight" in container.args
    assert container.mounts["/etc/modelmon/canary"] in router.config_map_volumes
    assert router.config_map_volumes[container.mounts["/etc/modelmon/canary"]] == (
        "user07-model-exporter-canary"
    )


def test_the_router_calls_services_and_ports_of_the_release(umbrella):
    objects = render(umbrella)
    services = {s.name: s for s in manifests.services(objects)}
    [router] = [w for w in manifests.workloads(objects) if w.name.endswith("-router")]
    prefixes = ("--stable-url=", "--canary-url=")
    urls = [a.split("=", 1)[1] for a in router.containers[0].args if a.startswith(prefixes)]
    assert len(urls) == 2
    for url in urls:
        host, port = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url).groups()
        assert host in services, url
        assert int(port) in {p.port for p in services[host].ports}


def test_no_router_without_a_canary(umbrella):
    objects = render(umbrella, **{"model-exporter.canary.enabled": "false"})
    names = {o["metadata"]["name"] for o in objects}
    assert not any(name.endswith(("-router", "-canary")) for name in names)


def test_ingress_nginx_gets_the_weight_as_a_canary_annotation(umbrella):
    objects = render(
        umbrella,
        **{"model-exporter.ingressNginx.enabled": "true", "model-exporter.canary.weight": "30"},
    )
    ingresses = {i["metadata"]["name"]: i for i in manifests.of_kind(objects, "Ingress")}
    stable, canary = (
        ingresses["user07-model-exporter-stable"],
        ingresses["user07-model-exporter-canary"],
    )
    assert "annotations" not in stable["metadata"]
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "30",
    }
    assert stable["spec"]["rules"][0]["host"] == canary["spec"]["rules"][0]["host"]
    for ingress in ingresses.values():
        assert validation_errors(ingress) == []


def test_gateway_api_route_splits_by_the_weight_and_validates(umbrella):
    objects = render(
        umbrella,
        **{"model-exporter.gatewayAPI.enabled": "true", "model-exporter.canary.weight": "25"},
    )
    [route] = manifests.of_kind(objects, "HTTPRoute")
    assert validation_errors(route) == []
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert weights == {"user07-model-exporter-stable": 75, "user07-model-exporter-canary": 25}
