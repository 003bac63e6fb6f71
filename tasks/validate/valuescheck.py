"""Check a values file against its chart: unknown keys, and the merged values against the schema.

Helm silently ignores a key the chart does not know, so a typo quietly disables a setting. A key
is known when the chart's defaults have it, its ``values.schema.json`` declares it, its
``values.yaml`` documents it in a comment, or its templates read it. Below a free-form map (an
empty ``{}`` default, an open schema object, or a map rendered verbatim) any key is accepted.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine.errors import FieldError
from ..engine.values import coalesce
from .chartdata import Chart, Path_
from .kubeschema import definition_validator, latest_schema_version

# Keys that charts copy verbatim into a Pod spec under the same name: their values are Kubernetes
# objects, so they are checked against that Kubernetes type (strictly) instead of the chart's
# example default (a probe's default holds httpGet; initialDelaySeconds is still valid).
KUBERNETES_TYPED = {
    "livenessProbe": "io.k8s.api.core.v1.Probe",
    "readinessProbe": "io.k8s.api.core.v1.Probe",
    "startupProbe": "io.k8s.api.core.v1.Probe",
    "resources": "io.k8s.api.core.v1.ResourceRequirements",
    "affinity": "io.k8s.api.core.v1.Affinity",
    "lifecycle": "io.k8s.api.core.v1.Lifecycle",
}


def _resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
    return schema


def _schema_child(schema: Any, key: str, root: Mapping[str, Any]) -> tuple[Any, bool, bool]:
    """(child schema, key declared, node open to any key) for ``key`` below ``schema``."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return None, False, False
    parts = [schema] + [
        _resolve(s, root) for k in ("allOf", "anyOf", "oneOf") for s in schema.get(k, [])
    ]
    for part in (p for p in parts if isinstance(p, dict)):
        props = part.get("properties") or {}
        if key in props:
            return props[key], True, False
        for pattern, sub in (part.get("patternProperties") or {}).items():
            if re.search(pattern, key):
                return sub, True, False
        extra = part.get("additionalProperties")
        if isinstance(extra, dict) or extra is True:
            return (extra if isinstance(extra, dict) else None), True, True
    return None, False, False


def _open_schema(schema: Any, root: Mapping[str, Any]) -> bool:
    """A schema node that declares an object but none of its keys: any key is allowed."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return False
    types = schema.get("type")
    is_object = types == "object" or (isinstance(types, list) and "object" in types)
    extra = schema.get("additionalProperties")
    return (is_object and not schema.get("properties") and not schema.get("patternProperties")) or (
        isinstance(extra, dict) or extra is True
    )


def _matches(path: Path_, patterns: Iterable[Path_]) -> bool:
    return any(
        len(p) == len(path) and all(fnmatch.fnmatchcase(k, q) for k, q in zip(path, p, strict=True))
        for p in patterns
    )


@dataclass
class ValuesCheck:
    """The outcome of checking one values file."""

    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keys: int = 0
    kube_version: str = ""


def check_values(
    values: Any, chart: Chart, source: str, kube_version: str | None = None
) -> ValuesCheck:
    """Every key of ``values`` must be known to ``chart``; merged values must satisfy its schema.

    ``kube_version`` picks the Kubernetes schemas for typed keys (default: the newest available).
    """
    result = ValuesCheck(kube_version=kube_version or latest_schema_version())
    if values is None:
        return result
    if not isinstance(values, dict):
        result.errors.append(FieldError(source, "(top level)", "expected a map of values"))
        return result
    _walk(values, chart, chart.values, chart.schema, (), (), source, result)
    _check_schema(values, chart, source, (), result)
    return result


def _walk(
    node: dict[str, Any],
    chart: Chart,
    default: Any,
    schema: Any,
    rel: Path_,
    shown: Path_,
    source: str,
    result: ValuesCheck,
) -> None:
    """Check every key of ``node`` (at ``rel`` in ``chart``, shown as ``shown``) and walk below."""
    root = chart.schema or {}
    for key, value in node.items():
        key = str(key)
        path, here = (*rel, key), (*shown, key)
        result.keys += 1
        if not rel and key == "global":
            continue
        if not rel and key in chart.subcharts:
            _walk_subchart(key, value, chart, here, source, result)
            continue
        in_defaults = isinstance(default, dict) and key in default
        child_schema, in_schema, _ = _schema_child(schema, key, root)
        if not (in_defaults or in_schema or path in chart.documented):
            result.errors.append(
                FieldError(
                    source,
                    ".".join(here),
                    f"unknown key: {chart.name} {chart.version} has no such value "
                    "(Helm would silently ignore it)",
                    _spelling_fix(key, rel, default, schema, chart),
                )
            )
            continue
        child_default = default.get(key) if in_defaults else None
        if child_default and isinstance(child_default, dict) and not isinstance(value, dict | None):
            result.errors.append(
                FieldError(
                    source,
                    ".".join(here),
                    f"expected a map (the chart's default), got {value!r}",
                    "set the keys below it, or null to remove the chart's map",
                )
            )
            continue
        if isinstance(value, dict) and key in KUBERNETES_TYPED:
            # before the verbatim test: a full chart's templates `toYaml` these (so they look
            # free-form), yet they are Kubernetes types, as strict as with the reference data
            _check_kubernetes_typed(KUBERNETES_TYPED[key], value, here, source, result)
            continue
        if not isinstance(value, dict) or _matches(path, chart.verbatim):
            continue
        if child_default == {} or _open_schema(child_schema, root):
            continue  # a free-form map (annotations, env, config rendered verbatim)
        documented_below = any(
            p[: len(path)] == path and len(p) > len(path) for p in chart.documented
        )
        if child_default is None and not documented_below and not child_schema:
            continue  # the chart declares no structure here
        if child_default is not None and not isinstance(child_default, dict):
            result.errors.append(
                FieldError(
                    source,
                    ".".join(here),
                    f"expected a {type(child_default).__name__} (the chart's default), got a map",
                    "set a plain value here, as the chart's values.yaml does",
                )
            )
            continue
        _walk(value, chart, child_default or {}, child_schema, path, here, source, result)


def _spelling_fix(key: str, rel: Path_, default: Any, schema: Any, chart: Chart) -> str:
    """The fix for an unknown key: the closest key the chart knows there, if one is close."""
    known = set(default) if isinstance(default, dict) else set()
    node = _resolve(schema, chart.schema or {})
    if isinstance(node, dict):
        known |= set(node.get("properties") or {})
    known |= {p[len(rel)] for p in chart.documented if len(p) == len(rel) + 1 and p[:-1] == rel}
    close = difflib.get_close_matches(key, sorted(str(k) for k in known), n=1)
    where = ".".join(rel) or "the top level"
    if close:
        return f"did you mean `{close[0]}`? (under {where} in the chart's values.yaml)"
    return "check the spelling and nesting against the chart's values.yaml"


def _walk_subchart(
    alias: str, value: Any, chart: Chart, here: Path_, source: str, result: ValuesCheck
) -> None:
    """Walk the values under a subchart's alias against that subchart, or note what was skipped."""
    sub = chart.view(alias)
    if sub is None:
        # the parent's own defaults under the alias (e.g. the `condition` key) are known;
        # anything else belongs to the missing subchart and cannot be judged here
        own = chart.values.get(alias) if isinstance(chart.values.get(alias), dict) else {}
        unsure = sorted(str(k) for k in (value if isinstance(value, dict) else {}))
        unsure = [k for k in unsure if k not in own]
        if unsure:
            result.notes.append(
                f"{source}: {'.'.join(here)}: subchart {alias} has no chart data here, "
                f"not checked: {', '.join(unsure)}"
            )
    elif isinstance(value, dict):
        _walk(value, sub, sub.values, sub.schema, (), here, source, result)


def _check_kubernetes_typed(
    definition: str, value: dict[str, Any], here: Path_, source: str, result: ValuesCheck
) -> None:
    """Check a value the chart copies into a Pod spec against its Kubernetes type, strictly."""
    validator = definition_validator(definition, result.kube_version)
    for err in validator.iter_errors(value):
        where = ".".join([*here, *(str(p) for p in err.absolute_path)])
        result.errors.append(FieldError(source, where, f"not a valid {definition}: {err.message}"))


def schema_errors(values: dict[str, Any], chart: Chart, source: str) -> list[FieldError]:
    """Where ``values`` merged onto the chart's defaults violate its (and subcharts') schema."""
    result = ValuesCheck()
    _check_schema(values, chart, source, (), result)
    return result.errors


def _check_schema(
    values: dict[str, Any], chart: Chart, source: str, shown: Path_, result: ValuesCheck
) -> None:
    if chart.schema:
        merged = coalesce(chart.values, values)
        validator = _schema_validator(chart.schema)
        for err in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path)):
            where = ".".join([*shown, *(str(p) for p in err.absolute_path)]) or "(top level)"
            result.errors.append(
                FieldError(
                    source, where, f"violates {chart.name}'s values.schema.json: {err.message}"
                )
            )
    for alias in chart.subcharts:
        sub = chart.view(alias)
        if sub is not None and isinstance(values.get(alias), dict):
            _check_schema(values[alias], sub, source, (*shown, alias), result)


def _schema_validator(schema: dict[str, Any]) -> Any:
    """A validator for the draft ``$schema`` names (charts spell it inconsistently: http/https)."""
    import jsonschema

    declared = str(schema.get("$schema", ""))
    for marker, cls in (
        ("draft-04", jsonschema.Draft4Validator),
        ("draft-06", jsonschema.Draft6Validator),
        ("2019-09", jsonschema.Draft201909Validator),
        ("2020-12", jsonschema.Draft202012Validator),
    ):
        if marker in declared:
            return cls({k: v for k, v in schema.items() if k != "$schema"})
    return jsonschema.Draft7Validator({k: v for k, v in schema.items() if k != "$schema"})
