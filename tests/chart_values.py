"""Test helpers: values keys checked against a chart's defaults, and ``helm template`` renders.

Helm ignores keys a chart does not read, so a typo silently turns a setting off. A key of ours is
known when the chart's ``values.yaml`` has it, when its ``values.schema.json`` declares it, or
when it sits below a map the chart documents as free-form (empty by default, or listed in the
test's ``free_form`` with the reason).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s_schemas import KUBERNETES_VERSION

CHARTS_ENV = "ONECLUSTER_CHARTS"


def leaf_paths(values: Any, prefix: str = "") -> list[str]:
    """Every key path of a values tree (lists are leaves: the chart copies them verbatim)."""
    if isinstance(values, dict) and values:
        out: list[str] = []
        for key, value in values.items():
            out += leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [prefix]


def _schema_has(schema: dict[str, Any] | None, parts: list[str]) -> bool:
    node = schema
    for part in parts:
        if not isinstance(node, dict):
            return False
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            # an open object (no properties, extra keys allowed): anything below is the chart's
            return node.get("additionalProperties", True) is not False and "properties" not in node
    return True


def _defaults_has(defaults: Any, parts: list[str]) -> bool:
    node = defaults
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            # an empty map or null default: a free-form map the chart renders as given
            return node in (None, {}, [])
    return True


def unknown_keys(
    values: dict[str, Any],
    defaults: dict[str, Any],
    schema: dict[str, Any] | None = None,
    free_form: Iterable[str] = (),
) -> list[str]:
    """Key paths of ``values`` that neither the chart's defaults nor its schema know."""
    unknown = []
    for path in leaf_paths(values):
        parts = path.split(".")
        if any(
            fnmatch.fnmatch(".".join(parts[: i + 1]), pat)
            for pat in free_form
            for i in range(len(parts))
        ):
            continue
        if not (_defaults_has(defaults, parts) or (schema and _schema_has(schema, parts))):
            unknown.append(path)
    return unknown


def reference_chart(reference: Path, chart: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A chart's default values and (when it ships one) its values schema, from the reference."""
    folder = reference / "charts" / chart
    defaults = yaml.safe_load((folder / "values.yaml").read_text()) or {}
    schema_file = folder / "values.schema.json"
    schema = json.loads(schema_file.read_text()) if schema_file.exists() else None
    return defaults, schema


def full_chart(chart: str, version: str) -> Path:
    """An unpacked chart at ``$ONECLUSTER_CHARTS/<chart>`` of ``version``, or skip."""
    root = os.environ.get(CHARTS_ENV)
    if not root:
        pytest.skip(f"${CHARTS_ENV} is not set: no full charts to render with helm template")
    folder = Path(root) / chart
    meta = folder / "Chart.yaml"
    if not meta.exists():
        pytest.skip(f"chart {chart} is not in ${CHARTS_ENV} ({root})")
    found = str(yaml.safe_load(meta.read_text()).get("version"))
    if found.lstrip("v") != version.lstrip("v"):
        pytest.skip(f"${CHARTS_ENV}/{chart} is version {found}, the stack pins {version}")
    if shutil.which("helm") is None:
        pytest.skip("helm is not installed")
    return folder


def helm_template(
    folder: Path, release: str, namespace: str, values: str, api_versions: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Objects ``helm template`` renders for ``values`` (given on stdin, as a deploy does)."""
    # the cluster's Kubernetes version: charts pick API versions from it (policy/v1 PDBs...)
    argv = [
        "helm",
        "template",
        release,
        str(folder),
        "--namespace",
        namespace,
        "--values",
        "-",
        "--kube-version",
        KUBERNETES_VERSION,
    ]
    # helm template has no API discovery; a live cluster reports these kind-qualified versions,
    # which some charts test for (Traefik renders policy/v1beta1 PDBs without it)
    for api in ("policy/v1/PodDisruptionBudget", *api_versions):
        argv += ["--api-versions", api]
    done = subprocess.run(
        argv, input=values, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"helm template {release} failed:\n{done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]
