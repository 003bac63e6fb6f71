"""The Kubernetes objects cluster.status reads, parsed from kubectl's JSON into small records.

Each parser takes one object as the API server returns it (``kubectl get ... -o json``; the
shapes are those of k8s.io/api ``core/v1/types.go``, ``apps/v1/types.go``, ``batch/v1/types.go``
at v0.36, and cert-manager's ``pkg/apis/certmanager/v1/types_certificate.go``) and keeps only
what a status needs. Nothing here runs a command.

Events are read as ``core/v1`` Events (``kubectl get events``: the core group comes first in
kubectl's resource priority). An Event recorded through ``events.k8s.io/v1`` (the descheduler's
recorder, ``k8s.io/client-go/tools/events``) reads back in core/v1 with ``reportingComponent``
(its ``reportingController``), ``action``, ``eventTime`` and ``series`` set and ``source``,
``count``, ``firstTimestamp``/``lastTimestamp`` empty; one recorded by a legacy recorder (the
kubelet's ``Unhealthy``, ``BackOff``, ``Evicted``) has ``source.component``, ``count`` and the two
timestamps. :func:`event` reads both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..engine.quantity import QuantityError, parse_quantity
from ..verify.longhorn import timestamp

# Helm marks every object it creates with its release (helm v4 pkg/action/validate.go,
# ``setMetadataVisitor``: meta.helm.sh/release-name and meta.helm.sh/release-namespace)
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"


def quantity(text: object) -> float:
    """A Kubernetes resource quantity as a number (``250m`` → 0.25, ``1Gi`` → 1073741824); 0 when
    absent or unreadable (a status must read what it can, not stop at one odd field)."""
    if text is None or text == "":
        return 0.0
    try:
        return float(parse_quantity(str(text)))
    except QuantityError:
        return 0.0


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _condition(conditions: Any, kind: str) -> Mapping[str, Any]:
    return next((c for c in conditions or () if c.get("type") == kind), {})


@dataclass(frozen=True)
class Node:
    """One Node: Ready, its role, the versions it reports, what it can give Pods."""

    name: str
    ready: bool
    control_plane: bool
    # the kubelet reports /etc/os-release's PRETTY_NAME: "Talos (v1.12.4)" (siderolabs/talos
    # pkg/machinery/version/os-release at v1.12.4)
    os_image: str
    kubelet: str  # v1.35.0
    cpu: float  # status.allocatable.cpu, cores
    memory: float  # status.allocatable.memory, bytes


def node(obj: Mapping[str, Any]) -> Node:
    status, meta = obj.get("status") or {}, _meta(obj)
    info = status.get("nodeInfo") or {}
    allocatable = status.get("allocatable") or {}
    return Node(
        name=meta.get("name", "?"),
        ready=_condition(status.get("conditions"), "Ready").get("status") == "True",
        control_plane="node-role.kubernetes.io/control-plane" in (meta.get("labels") or {}),
        os_image=info.get("osImage", ""),
        kubelet=info.get("kubeletVersion", ""),
        cpu=quantity(allocatable.get("cpu")),
        memory=quantity(allocatable.get("memory")),
    )


@dataclass(frozen=True)
class Container:
    """One container's state in a Pod's status."""

    name: str
    ready: bool
    restarts: int
    waiting: str  # state.waiting.reason (CrashLoopBackOff, ImagePullBackOff, ...), else ""
    last_reason: str  # lastState.terminated.reason (Error, OOMKilled, ...)
    last_finished: datetime | None


@dataclass(frozen=True)
class Pod:
    """One Pod: where it runs, what owns it, how it is doing, what it claims and requests."""

    namespace: str
    name: str
    node: str
    phase: str
    created: datetime | None
    scheduler: str  # spec.schedulerName
    owner: tuple[str, str]  # (kind, name) of its workload: Deployment via its ReplicaSet
    scheduled: Mapping[str, str]  # the PodScheduled condition: status, reason, message
    containers: tuple[Container, ...]
    claims: tuple[str, ...]  # PersistentVolumeClaims it mounts
    cpu: float  # the sum of its containers' requests, cores
    memory: float  # bytes
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def terminated(self) -> bool:
        """Succeeded or Failed: it holds no resources and counts for no request."""
        return self.phase in ("Succeeded", "Failed")


def _owner(meta: Mapping[str, Any]) -> tuple[str, str]:
    """The workload a Pod belongs to: a ReplicaSet ``<deployment>-<pod-template-hash>`` is its
    Deployment's (the hash is the Pod's ``pod-template-hash`` label)."""
    for ref in meta.get("ownerReferences") or ():
        if not ref.get("controller", True):
            continue
        kind, name = ref.get("kind", ""), ref.get("name", "")
        if kind == "ReplicaSet":
            suffix = "-" + ((meta.get("labels") or {}).get("pod-template-hash") or "")
            if suffix != "-" and name.endswith(suffix):
                return ("Deployment", name[: -len(suffix)])
        return (kind, name)
    return ("", "")


def pod(obj: Mapping[str, Any]) -> Pod:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    containers = []
    for c in status.get("containerStatuses") or ():
        state, last = c.get("state") or {}, (c.get("lastState") or {}).get("terminated") or {}
        containers.append(
            Container(
                name=c.get("name", ""),
                ready=bool(c.get("ready")),
                restarts=int(c.get("restartCount") or 0),
                waiting=(state.get("waiting") or {}).get("reason", ""),
                last_reason=last.get("reason", ""),
                last_finished=timestamp(last.get("finishedAt")),
            )
        )
    requests = [
        (c.get("resources") or {}).get("requests") or {} for c in spec.get("containers") or ()
    ]
    scheduled = _condition(status.get("conditions"), "PodScheduled")
    return Pod(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", "?"),
        node=spec.get("nodeName", ""),
        phase=status.get("phase", ""),
        created=timestamp(meta.get("creationTimestamp")),
        scheduler=spec.get("schedulerName") or "default-scheduler",
        owner=_owner(meta),
        scheduled={k: str(scheduled.get(k, "")) for k in ("status", "reason", "message")},
        containers=tuple(containers),
        claims=tuple(
            v["persistentVolumeClaim"]["claimName"]
            for v in spec.get("volumes") or ()
            if (v.get("persistentVolumeClaim") or {}).get("claimName")
        ),
        cpu=sum(quantity(r.get("cpu")) for r in requests),
        memory=sum(quantity(r.get("memory")) for r in requests),
        labels=dict(meta.get("labels") or {}),
    )


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or DaemonSet: how many replicas it wants and how many are ready."""

    kind: str  # Deployment, StatefulSet, DaemonSet
    namespace: str
    name: str
    desired: int
    ready: int
    release: tuple[str, str] = ("", "")  # (namespace, name) of the Helm release that made it
    claim_templates: tuple[str, ...] = ()  # a StatefulSet's volumeClaimTemplates

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind.lower(), self.name, self.namespace)

    def claims(self) -> list[str]:
        """The claims a StatefulSet's replicas own: ``<template>-<name>-<ordinal>``."""
        return [f"{t}-{self.name}-{i}" for t in self.claim_templates for i in range(self.desired)]


def workload(obj: Mapping[str, Any]) -> Workload:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    kind = obj.get("kind", "")
    annotations = meta.get("annotations") or {}
    if kind == "DaemonSet":
        desired, ready = status.get("desiredNumberScheduled"), status.get("numberReady")
    else:  # spec.replicas defaults to 1 (apps/v1)
        desired, ready = spec.get("replicas", 1), status.get("readyReplicas")
    return Workload(
        kind=kind,
        namespace=meta.get("namespace", ""),
        name=meta.get("name", "?"),
        desired=int(desired or 0),
        ready=int(ready or 0),
        release=(annotations.get(HELM_NAMESPACE, ""), annotations.get(HELM_RELEASE, "")),
        claim_templates=tuple(
            _meta(t).get("name", "") for t in spec.get("volumeClaimTemplates") or ()
        ),
    )


@dataclass(frozen=True)
class Claim:
    """A PersistentVolumeClaim: bound or not, and to which volume (Longhorn's volume name)."""

    namespace: str
    name: str
    phase: str  # Pending, Bound, Lost
    volume: str
    created: datetime | None = None


def claim(obj: Mapping[str, Any]) -> Claim:
    meta = _meta(obj)
    return Claim(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", "?"),
        phase=(obj.get("status") or {}).get("phase", ""),
        volume=(obj.get("spec") or {}).get("volumeName", ""),
        created=timestamp(meta.get("creationTimestamp")),
    )


@dataclass(frozen=True)
class Event:
    """One core/v1 Event: what happened to which object, who said so, how often, when."""

    namespace: str
    kind: str  # involvedObject.kind
    name: str  # involvedObject.name
    reason: str
    message: str
    type: str  # Normal, Warning
    component: str  # reportingComponent, else source.component
    host: str  # source.host (the kubelet's node)
    action: str
    count: int
    first: datetime | None
    last: datetime | None


def event(obj: Mapping[str, Any]) -> Event:
    involved, source = obj.get("involvedObject") or {}, obj.get("source") or {}
    series = obj.get("series") or {}
    at = timestamp(obj.get("eventTime"))
    first = timestamp(obj.get("firstTimestamp")) or at
    last = timestamp(series.get("lastObservedTime")) or timestamp(obj.get("lastTimestamp")) or first
    return Event(
        namespace=involved.get("namespace") or _meta(obj).get("namespace", ""),
        kind=involved.get("kind", ""),
        name=involved.get("name", ""),
        reason=obj.get("reason", ""),
        message=obj.get("message") or obj.get("note") or "",
        type=obj.get("type", ""),
        component=obj.get("reportingComponent") or source.get("component", ""),
        host=source.get("host", ""),
        action=obj.get("action", ""),
        count=int(series.get("count") or obj.get("count") or 1),
        first=first,
        last=last,
    )


@dataclass(frozen=True)
class CronJob:
    """A CronJob and the last time one of its Jobs succeeded (``status.lastSuccessfulTime``)."""

    namespace: str
    name: str
    last_success: datetime | None
    last_schedule: datetime | None


def cronjob(obj: Mapping[str, Any]) -> CronJob:
    meta, status = _meta(obj), obj.get("status") or {}
    return CronJob(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", "?"),
        last_success=timestamp(status.get("lastSuccessfulTime")),
        last_schedule=timestamp(status.get("lastScheduleTime")),
    )


@dataclass(frozen=True)
class Certificate:
    """A cert-manager Certificate: when it expires, whether it is Ready, and why not."""

    namespace: str
    name: str
    not_after: datetime | None
    ready: bool
    message: str


def certificate(obj: Mapping[str, Any]) -> Certificate:
    meta, status = _meta(obj), obj.get("status") or {}
    ready = _condition(status.get("conditions"), "Ready")
    return Certificate(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", "?"),
        not_after=timestamp(status.get("notAfter")),
        ready=ready.get("status") == "True",
        message=ready.get("message", ""),
    )
