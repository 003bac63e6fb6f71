"""Kyverno 1.19's rule auto-generation, and the admission of one object by a policy's rules.

Kyverno copies every Pod rule of a ClusterPolicy to the pod controllers, so that a Deployment is
mutated or rejected at creation rather than its Pods later. What it generates, and for which
kinds, is ``pkg/autogen/v1/`` of kyverno/kyverno at tag v1.19.0; :func:`computed_rules` follows
it step by step, for the parts of a rule this project's policies use (``match``/``exclude`` with
``any``, ``preconditions``, ``mutate.patchStrategicMerge``):

- ``autogen.go`` ``CanAutoGen``: a rule naming names, a selector or annotations, or mixing Pod with
  other kinds, switches auto-generation off; otherwise the controllers are ``PodControllers``
  (DaemonSet, Deployment, Job, StatefulSet, ReplicaSet, ReplicationController, CronJob).
- ``autogen.go`` ``computeRules``: the ``pod-policies.kyverno.io/autogen-controllers`` annotation,
  when present, replaces that set (``none`` leaves the policy's own rules only).
- ``rule.go`` ``generateRuleForControllers`` / ``generateRule``: rule ``autogen-<name>`` whose
  ``any`` filters that list ``Pod`` list the controllers instead, whose strategic-merge patch is
  wrapped in ``spec.template``; ``generateCronJobRule`` adds ``autogen-cronjob-<name>`` wrapped in
  ``spec.jobTemplate``.
- ``rule.go`` ``convertRule``/``updateFields``: the generated rule's JSON text has
  ``request.object.metadata`` replaced by ``request.object.spec.template.metadata`` (and likewise
  ``spec`` and ``oldObject``), which is how a Pod precondition ends up asking about the
  controller's pod template.

:func:`admit` then plays one admission request through the rules the way Kyverno's engine does
for these fields: kinds and operations matched, namespaces excluded, ``{{ }}`` preconditions
evaluated as JMESPath (Kyverno's variable language), and each applying rule's patch merged in.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any

import jmespath

AUTOGEN_ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"
POD_CONTROLLERS = (
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "CronJob",
)
# internal/gvk.go PodControllerGVKMap
GVK = {
    "DaemonSet": "apps/v1/DaemonSet",
    "Deployment": "apps/v1/Deployment",
    "Job": "batch/v1/Job",
    "StatefulSet": "apps/v1/StatefulSet",
    "ReplicaSet": "apps/v1/ReplicaSet",
    "ReplicationController": "v1/ReplicationController",
    "CronJob": "batch/v1/CronJob",
    "Pod": "v1/Pod",
}
# rule.go podReplacementRules / cronJobReplacementRules, applied in this order
POD_REPLACEMENTS = (
    ("request.object.spec", "request.object.spec.template.spec"),
    ("request.oldObject.spec", "request.oldObject.spec.template.spec"),
    ("request.object.metadata", "request.object.spec.template.metadata"),
    ("request.oldObject.metadata", "request.oldObject.spec.template.metadata"),
)
CRONJOB_REPLACEMENTS = (
    ("request.object.spec", "request.object.spec.jobTemplate.spec.template.spec"),
    ("request.oldObject.spec", "request.oldObject.spec.jobTemplate.spec.template.spec"),
    ("request.object.metadata", "request.object.spec.jobTemplate.spec.template.metadata"),
    ("request.oldObject.metadata", "request.oldObject.spec.jobTemplate.spec.template.metadata"),
)


def _kind(entry: str) -> str:
    """``apps/v1/DaemonSet`` → ``DaemonSet`` (kube ``GetKindFromGVK``, subresource dropped)."""
    return entry.split("/")[-1].split(".")[0]


def _contains_kind(kinds: Iterable[str], kind: str) -> bool:
    return any(_kind(k) == kind for k in kinds)


def _filters(block: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The resource descriptions of a match/exclude block (its own, then ``any`` and ``all``)."""
    if not block:
        return []
    found = [block["resources"]] if "resources" in block else []
    for key in ("any", "all"):
        found += [f.get("resources", {}) for f in block.get(key, [])]
    return found


def _kinds(block: dict[str, Any] | None) -> list[str]:
    return [k for f in _filters(block) for k in f.get("kinds", [])]


def can_autogen(spec: dict[str, Any]) -> bool:
    """``CanAutoGen``: whether Kyverno generates controller rules for this policy at all."""
    needed = False
    for rule in spec["rules"]:
        if "generate" in rule or "patchesJson6902" in rule.get("mutate", {}):
            return False
        for subject in _filters(rule.get("match")) + _filters(rule.get("exclude")):
            kinds = subject.get("kinds", [])
            mixed = len(kinds) > 1 and _contains_kind(kinds, "Pod")
            if any(subject.get(k) for k in ("name", "names", "selector", "annotations")) or mixed:
                return False
            needed = needed or any(_kind(k) in (*POD_CONTROLLERS, "Pod") for k in kinds)
    return needed


def _retarget(block: dict[str, Any], kinds: list[str], only_pod: bool) -> None:
    """``getAnyAllAutogenRule`` (``only_pod``) or the CronJob variant, on ``any`` else ``all``."""
    key = "any" if block.get("any") else "all" if block.get("all") else None
    if key is None:
        if "resources" in block and block["resources"].get("kinds"):
            block["resources"]["kinds"] = [GVK.get(k, k) for k in kinds]
        return
    for entry in block[key]:
        res = entry.setdefault("resources", {})
        if not only_pod or _contains_kind(res.get("kinds", []), "Pod"):
            res["kinds"] = [GVK.get(k, k) for k in kinds]


def _generate(
    rule: dict[str, Any], name: str, template_key: str, kinds: list[str], only_pod: bool
) -> dict[str, Any] | None:
    """``generateRule``: the copy for ``kinds``, its patch wrapped under ``spec.<template_key>``."""
    out = copy.deepcopy(rule)
    out["name"] = name[:63]
    _retarget(out["match"], kinds, only_pod)
    if out.get("exclude"):
        _retarget(out["exclude"], kinds, only_pod)
    patch = out.get("mutate", {}).get("patchStrategicMerge")
    if patch is None:
        return None  # validate/verifyImages rules: not used by this project's policies
    out["mutate"] = {"patchStrategicMerge": {"spec": {template_key: patch}}}
    return out


def _controller_rule(rule: dict[str, Any], controllers: list[str]) -> dict[str, Any] | None:
    """``generateRuleForControllers``: the rule for every listed controller but CronJob."""
    if rule["name"].startswith("autogen-") or not controllers:
        return None
    exclude_kinds = _kinds(rule.get("exclude"))
    if not _contains_kind(_kinds(rule["match"]), "Pod") or (
        exclude_kinds and not _contains_kind(exclude_kinds, "Pod")
    ):
        return None
    return _generate(rule, f"autogen-{rule['name']}", "template", sorted(controllers), True)


def _converted(rule: dict[str, Any], replacements: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """``convertRule``/``updateFields``: the rule's JSON text with the object paths shifted."""
    text = json.dumps(rule)
    for old, new in replacements:
        text = text.replace(old, new)
    return json.loads(text)


def computed_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """``computeRules(p, "")``: the policy's rules plus the ones Kyverno generates for it."""
    spec = policy["spec"]
    rules = list(spec["rules"])
    if not can_autogen(spec):
        return rules
    requested = policy.get("metadata", {}).get("annotations", {}).get(AUTOGEN_ANNOTATION)
    controllers = set(POD_CONTROLLERS) if requested is None else set(requested.split(","))
    if "all" in controllers:
        controllers = set(POD_CONTROLLERS)
    if controllers == {"none"}:
        return rules
    # controller names outside the supported list are dropped (generateRuleForControllers)
    plain = [c for c in controllers if c in POD_CONTROLLERS and c != "CronJob"]
    generated: list[dict[str, Any]] = []
    for rule in rules:
        base = _controller_rule(rule, plain)
        if base is not None:
            generated.append(_converted(base, POD_REPLACEMENTS))
        if "CronJob" in controllers:
            # generateCronJobRule: from the controllers' rule, re-targeted at CronJob
            inner = _controller_rule(rule, plain or ["CronJob"])
            cron = inner and _generate(
                inner, f"autogen-cronjob-{rule['name']}", "jobTemplate", ["CronJob"], False
            )
            if cron is not None:
                generated.append(_converted(cron, CRONJOB_REPLACEMENTS))
    return [r for r in rules if not r["name"].startswith("autogen-")] + generated


def _matches(block: dict[str, Any] | None, kind: str, namespace: str, operation: str) -> bool:
    """Whether one ``match``/``exclude`` block selects the request (``any``: one filter does)."""
    if not block:
        return False
    filters = _filters(block)
    if not filters:
        return False

    def selects(res: dict[str, Any]) -> bool:
        kinds = res.get("kinds")
        if kinds is not None and not _contains_kind(kinds, kind):
            return False
        ops = res.get("operations")
        if ops is not None and operation not in ops:
            return False
        namespaces = res.get("namespaces")
        return namespaces is None or any(
            re.fullmatch(n.replace("*", ".*").replace("?", "."), namespace) for n in namespaces
        )

    return (all if block.get("all") else any)(selects(f) for f in filters)


def _value(template: Any, context: dict[str, Any]) -> Any:
    """A condition side: ``{{ jmespath }}`` evaluated in the admission context, else literal."""
    if isinstance(template, str):
        found = re.fullmatch(r"\s*\{\{(.*)\}\}\s*", template, re.S)
        if found:
            return jmespath.search(found.group(1).strip(), context)
    return template


def _holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    key, value = _value(condition["key"], context), _value(condition.get("value"), context)
    operator = condition["operator"]
    if operator == "Equals":
        return key == value
    if operator == "NotEquals":
        return key != value
    raise NotImplementedError(f"condition operator {operator} is not modelled here")


def _preconditions(rule: dict[str, Any], context: dict[str, Any]) -> bool:
    conditions = rule.get("preconditions") or {}
    return all(_holds(c, context) for c in conditions.get("all", [])) and (
        not conditions.get("any") or any(_holds(c, context) for c in conditions["any"])
    )


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def admit(policy: dict[str, Any], obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """``obj`` as it leaves Kyverno's mutating webhook under ``policy`` (a copy)."""
    out = copy.deepcopy(obj)
    kind, namespace = obj["kind"], obj["metadata"].get("namespace", "default")
    for rule in computed_rules(policy):
        context = {"request": {"object": out, "operation": operation, "namespace": namespace}}
        if not _matches(rule["match"], kind, namespace, operation):
            continue
        if _matches(rule.get("exclude"), kind, namespace, operation):
            continue
        if not _preconditions(rule, context):
            continue
        _merge(out, rule.get("mutate", {}).get("patchStrategicMerge", {}))
    return out
