"""NetworkPolicy ingress semantics, to ask what the rendered policies admit.

As the Kubernetes API defines them (``networking.k8s.io/v1`` NetworkPolicy, and "Network Policies"
in the Kubernetes documentation), and as kube-network-policies enforces them: a Pod selected by no
policy with ``Ingress`` in its ``policyTypes`` admits everything; a Pod selected by one or more
admits a connection when at least one ingress rule of one of them matches it. A rule matches when
one of its ``from`` peers does (none: any source) and one of its ``ports`` does (none: any port).
A peer with both ``namespaceSelector`` and ``podSelector`` needs both; an empty selector matches
everything. Namespaces carry ``kubernetes.io/metadata.name`` as the API server sets it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a Pod by namespace and labels, with its named container ports."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name → number

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) against ``labels``."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], src: Peer, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return False  # Pod-to-Pod traffic: ipBlock is for addresses outside the cluster
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    in_ns = (
        selects(ns_sel, src.namespace_labels) if ns_sel is not None else src.namespace == policy_ns
    )
    return in_ns and (pod_sel is None or selects(pod_sel, src.labels))


def _port_matches(rule_port: Mapping[str, Any], dst: Peer, port: int, protocol: str) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    wanted = rule_port.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str):
        return dst.ports.get(wanted) == port
    end = rule_port.get("endPort", wanted)
    return wanted <= port <= end


def ingress_policies(docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The NetworkPolicies among ``docs`` that govern ingress."""
    found = []
    for doc in docs:
        if doc.get("kind") != "NetworkPolicy":
            continue
        spec = doc["spec"]
        types = spec.get("policyTypes") or ["Ingress"]
        if "Ingress" in types:
            found.append(doc)
    return found


def admits(
    docs: Iterable[Mapping[str, Any]], src: Peer, dst: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the policies among ``docs`` let ``src`` open a connection to ``dst:port``."""
    governing = [
        p
        for p in ingress_policies(docs)
        if p["metadata"]["namespace"] == dst.namespace
        and selects(p["spec"].get("podSelector", {}), dst.labels)
    ]
    if not governing:
        return True
    for policy in governing:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            ports = rule.get("ports")
            from_ok = not peers or any(
                _peer_matches(p, src, policy["metadata"]["namespace"]) for p in peers
            )
            port_ok = not ports or any(_port_matches(p, dst, port, protocol) for p in ports)
            if from_ok and port_ok:
                return True
    return False
