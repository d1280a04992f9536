"""Which ServiceMonitors, PodMonitors and PrometheusRules the stack's Prometheus takes, as
kube-prometheus-stack configures its Prometheus resource and the Prometheus Operator applies it.

kube-prometheus-stack (templates/prometheus/prometheus.yaml) gives the Prometheus resource
`serviceMonitorSelector`, `podMonitorSelector` and `ruleSelector` from its values: the selector
given there, or, when none is given and `*SelectorNilUsesHelmValues` is true (the default),
`release: <its release name>`; namespace selectors default to every namespace. The operator
ignores what they do not select, which is the pitfall the chart's `release` label exists for;
the local stack ignores it too, and logs which object it left out and why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local_stack.manifests import LabelSelector, Manifest, ManifestError

log = logging.getLogger("local_stack.selection")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
KINDS = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor", "PrometheusRule": "rule"}


@dataclass(frozen=True)
class Selection:
    """One kind's object selector and namespace selector."""

    objects: LabelSelector | None  # None: the field is unset, which selects nothing
    namespaces: LabelSelector

    def takes(self, obj: Manifest) -> bool:
        if self.objects is None:
            return False
        namespace = str(obj["metadata"].get("namespace", "default"))
        labels = obj["metadata"].get("labels") or {}
        return self.namespaces.matches({NAMESPACE_NAME_LABEL: namespace}) and (
            self.objects.matches(labels)
        )


def _selector(spec: Mapping[str, Any], owner: str) -> LabelSelector:
    unknown = set(spec) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise ManifestError(f"{owner}: {sorted(unknown)[0]} is not a label selector field")
    return LabelSelector(
        dict(spec.get("matchLabels") or {}), tuple(spec.get("matchExpressions") or ())
    )


def _namespace_selector(spec: Mapping[str, Any] | None, owner: str) -> LabelSelector:
    selector = _selector(spec or {}, owner)
    keys = set(selector.match_labels) | {e["key"] for e in selector.match_expressions}
    if keys - {NAMESPACE_NAME_LABEL}:
        raise ManifestError(
            f"{owner}: the local stack knows namespaces by name only ({NAMESPACE_NAME_LABEL}), "
            f"not by {sorted(keys - {NAMESPACE_NAME_LABEL})[0]}"
        )
    return selector


def selections(stack_values: Mapping[str, Any], stack_release: str) -> dict[str, Selection]:
    """kind → Selection, from the kube-prometheus-stack section of the values."""
    spec = (stack_values.get("prometheus") or {}).get("prometheusSpec") or {}
    found = {}
    for kind, field in KINDS.items():
        owner = f"kube-prometheus-stack.prometheus.prometheusSpec.{field}Selector"
        given = spec.get(f"{field}Selector")
        if given:
            objects: LabelSelector | None = _selector(given, owner)
        elif spec.get(f"{field}SelectorNilUsesHelmValues", True):
            objects = LabelSelector({"release": stack_release})
        else:
            objects = LabelSelector()
        namespaces = _namespace_selector(spec.get(f"{field}NamespaceSelector"), owner)
        found[kind] = Selection(objects, namespaces)
    return found


def selected(
    objects: Sequence[Manifest], kind: str, rules: Mapping[str, Selection]
) -> list[Manifest]:
    """The objects of `kind` the stack's Prometheus takes; the others are logged and left out."""
    taken = []
    for obj in objects:
        if obj.get("kind") != kind:
            continue
        if rules[kind].takes(obj):
            taken.append(obj)
            continue
        log.warning(
            "%s %s/%s is not selected by the stack's Prometheus (%s, labels %s): left out, as "
            "the Prometheus Operator would",
            kind,
            obj["metadata"].get("namespace", "default"),
            obj["metadata"]["name"],
            rules[kind].objects,
            obj["metadata"].get("labels") or {},
        )
    return taken
