"""Sync declared Secrets from Infisical into Kubernetes, values held only in memory.

Each :class:`~tasks.engine.components.SecretSpec` becomes one Secret applied server-side (field
manager ``onecluster``) through the kubernetes Python client: no file, no argv, no kubectl. Server-
side apply gives the rest: a key dropped from the declaration is dropped from the Secret (the
manager's previous fields that it no longer applies are removed), and an apply that changes nothing
leaves the object, and its resourceVersion, as it was.

Every value is fetched before the first request to the cluster, so a store failure or a missing
name changes nothing. A Secret that already holds exactly these values (type, keys, data and
onecluster's labels) is left alone, without a request that writes: a re-run of a converged cluster
only reads (:func:`up_to_date` is that read-compare for every Secret of a step; the run's converge
check asks it, from one list of onecluster's Secrets per run). Values are registered for redaction in their plain and base64 forms: the
API server echoes Secrets back base64-encoded, and a debug log or an error body must not show them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine.errors import OneclusterError, SecretsError
from ..engine.kubectl import namespace_manifest
from ..engine.output import clipped, echo, redact, register_secret
from .infisical import missing_credentials

if TYPE_CHECKING:
    from ..engine.components import SecretSpec
    from ..engine.context import RunContext

FIELD_MANAGER = "onecluster"
LABELS = {"app.kubernetes.io/managed-by": "onecluster"}
APPLY = "application/apply-patch+yaml"
REQUEST_TIMEOUT = 30  # seconds per API request


@dataclass(frozen=True)
class Outcome:
    """What one apply did to one Secret."""

    namespace: str
    name: str
    action: str  # created | configured | unchanged
    keys: tuple[str, ...]

    def __str__(self) -> str:
        return f"Secret {self.namespace}/{self.name} {self.action} (keys: {', '.join(self.keys)})"


def required_names(specs: Iterable[SecretSpec]) -> list[str]:
    """Every Infisical name ``specs`` read, sorted and without repeats."""
    return sorted({n for s in specs for n in s.keys.values()})


def _register(value: str) -> None:
    register_secret(value)
    register_secret(base64.b64encode(value.encode()).decode())


def secret_manifest(spec: SecretSpec, values: Mapping[str, str]) -> dict[str, Any]:
    """The Secret for ``spec`` with ``values`` (Infisical name → value), base64 in ``data``.

    ``data`` rather than ``stringData``: the API server folds stringData into data, so the
    manager would not own the keys it wrote and could never prune them.
    """
    data = {}
    for key, source in sorted(spec.keys.items()):
        _register(values[source])
        data[key] = base64.b64encode(values[source].encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": dict(LABELS)},
        "type": spec.type,
        "data": data,
    }


def fetch(store: Any, specs: Sequence[SecretSpec], *, owner: str) -> dict[str, str]:
    """Every value ``specs`` need, or one error naming every missing name (nothing applied)."""
    names = required_names(specs)
    values = store.read(names)
    for value in values.values():
        _register(value)
    missing = [n for n in names if n not in values]
    if missing:
        where = getattr(store, "where", "the secret store")
        raise SecretsError(
            f"{owner}: missing in Infisical ({where}): {', '.join(missing)}. Add them there, "
            "tagged with the cluster's name, and run again. Nothing was changed."
        )
    return values


def preflight(ctx: RunContext, specs: Sequence[SecretSpec], *, owner: str) -> list[str]:
    """One problem naming every Infisical name ``specs`` need that the store lacks.

    A dry-run without Infisical credentials cannot ask, and does not stop: it says once that the
    check was skipped (a real run would stop at this point with the credentials error).
    """
    store = preflight_store(ctx)
    if store is None:
        return []
    missing = sorted(set(required_names(specs)) - store.names())
    if not missing:
        return []
    where = getattr(store, "where", "the secret store")
    return [f"{owner}: missing in Infisical ({where}): {', '.join(missing)}"]


def preflight_store(ctx: RunContext) -> Any:
    """The store to check against, or None in a dry-run that has no credentials to open one."""
    if "store" in ctx.state or not ctx.dry_run:
        return ctx.secret_store()
    unset = missing_credentials()
    if not unset:
        return ctx.secret_store()
    if not ctx.state.get("secrets-unchecked"):
        ctx.state["secrets-unchecked"] = True
        echo(
            f"# dry-run: Infisical not checked ({' and '.join('$' + v for v in unset)} unset); "
            "a real run checks every required secret first and stops if one is missing"
        )
    return None


# Kubernetes ------------------------------------------------------------------------------------


def api_client(kubeconfig: str) -> Any:
    """A kubernetes ApiClient for ``kubeconfig`` (its current context)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        return config.new_client_from_config(config_file=kubeconfig)
    except (ConfigException, OSError, ValueError) as exc:
        raise SecretsError(
            f"cannot use kubeconfig {kubeconfig}: {clipped(str(exc), 300)} (fix: point "
            "$KUBECONFIG at the cluster's kubeconfig, e.g. the one `invoke talos.kubeconfig` writes)"
        ) from None


def _api_error(exc: Exception, what: str) -> SecretsError:
    """A SecretsError for a failed API request: status and the Status message, redacted."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        import json

        message = ""
        try:
            message = clipped(str(json.loads(exc.body or "{}").get("message", "")), 300)
        except (ValueError, AttributeError):
            message = ""
        hint = {
            401: "the kubeconfig's credentials were rejected",
            403: "the kubeconfig's user may not get/patch Secrets and Namespaces there",
        }.get(exc.status or 0, "")
        detail = "; ".join(p for p in (message, hint) if p)
        text = f"Kubernetes API refused to {what} (HTTP {exc.status})" + (
            f": {detail}" if detail else ""
        )
    else:
        text = f"could not reach the Kubernetes API to {what} ({type(exc).__name__})"
    return SecretsError(redact(text))


def _read(call: Any, what: str, *args: Any) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return call(*args, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _api_error(exc, what) from None
    except Exception as exc:
        raise _api_error(exc, what) from None


def _apply(call: Any, what: str, *args: Any) -> Any:
    try:
        return call(
            *args,
            field_manager=FIELD_MANAGER,
            # onecluster is the source of truth for these objects: take over fields
            # someone changed by hand rather than stopping on a conflict
            force=True,
            _content_type=APPLY,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except Exception as exc:
        raise _api_error(exc, what) from None


def ensure_namespace(core: Any, name: str) -> bool:
    """Create namespace ``name`` (server-side apply) if it is missing; True when created."""
    if _read(core.read_namespace, f"read namespace {name}", name) is not None:
        return False
    _apply(core.patch_namespace, f"create namespace {name}", name, namespace_manifest(name, LABELS))
    return True


def _register_live(data: Mapping[str, str] | None) -> None:
    """The values a live Secret holds are secrets too (base64 and decoded)."""
    for encoded in (data or {}).values():
        register_secret(encoded)
        register_secret(base64.b64decode(encoded).decode("utf-8", "replace"))


def holds(live: Any, body: Mapping[str, Any]) -> bool:
    """Whether the live Secret ``live`` (the client's V1Secret) already is ``body``: same type,
    the same keys with the same data, and onecluster's labels. An apply would change nothing."""
    if live is None:
        return False
    labels = (live.metadata.labels if live.metadata else None) or {}
    return (
        (live.type or "Opaque") == body["type"]
        and dict(live.data or {}) == body["data"]
        and all(labels.get(k) == v for k, v in body["metadata"]["labels"].items())
    )


def apply_secret(core: Any, spec: SecretSpec, values: Mapping[str, str]) -> Outcome:
    """Server-side apply the Secret for ``spec``; report created / configured / unchanged.

    A Secret that already is what would be applied is not written (``unchanged``)."""
    ref = f"{spec.namespace}/{spec.name}"
    before = _read(core.read_namespaced_secret, f"read Secret {ref}", spec.name, spec.namespace)
    if before is not None:
        _register_live(before.data)
    body = secret_manifest(spec, values)
    if holds(before, body):
        return Outcome(spec.namespace, spec.name, "unchanged", tuple(sorted(spec.keys)))
    after = _apply(
        core.patch_namespaced_secret, f"apply Secret {ref}", spec.name, spec.namespace, body
    )
    if before is None:
        action = "created"
    elif after.metadata.resource_version == before.metadata.resource_version:
        action = "unchanged"
    else:
        action = "configured"
    return Outcome(spec.namespace, spec.name, action, tuple(sorted(spec.keys)))


def apply_all(client: Any, specs: Sequence[SecretSpec], values: Mapping[str, str]) -> list[Outcome]:
    """Apply every spec's Secret (namespaces first) through ``client``."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(client)
    for namespace in sorted({s.namespace for s in specs}):
        ensure_namespace(core, namespace)
    return [apply_secret(core, s, values) for s in specs]


LIVE_SECRETS = "converge.onecluster-secrets"


def live_secrets(ctx: RunContext) -> dict[tuple[str, str], Any]:
    """Every Secret onecluster manages (its label), by (namespace, name): one list request per
    run, shared by every secret step's check (values registered for redaction as they arrive)."""
    from ..engine.record import cached

    def load() -> dict[tuple[str, str], Any]:
        from kubernetes import client as k8s

        client = api_client(ctx.kubeconfig)
        try:
            core = k8s.CoreV1Api(client)
            selector = ",".join(f"{k}={v}" for k, v in LABELS.items())
            try:
                found = core.list_secret_for_all_namespaces(
                    label_selector=selector, _request_timeout=REQUEST_TIMEOUT
                )
            except Exception as exc:
                raise _api_error(exc, "list onecluster's Secrets") from None
        finally:
            client.close()
        live = {}
        for item in found.items or []:
            _register_live(item.data)
            live[(item.metadata.namespace, item.metadata.name)] = item
        return live

    return cached(ctx, LIVE_SECRETS, load)


def up_to_date(ctx: RunContext, specs: Sequence[SecretSpec], *, owner: str) -> bool:
    """Whether every Secret of ``specs`` already holds its Infisical values (reads only: the
    store, and the run's one list of onecluster's Secrets); False when either cannot tell."""
    try:
        values = fetch(ctx.secret_store(), specs, owner=owner)
        live = live_secrets(ctx)
    except OneclusterError:
        return False
    return all(holds(live.get((s.namespace, s.name)), secret_manifest(s, values)) for s in specs)


def sync(ctx: RunContext, specs: Sequence[SecretSpec], *, owner: str) -> list[Outcome]:
    """Create or update ``specs`` as Kubernetes Secrets from Infisical values."""
    values = fetch(ctx.secret_store(), specs, owner=owner)
    client = api_client(ctx.kubeconfig)
    try:
        outcomes = apply_all(client, specs, values)
    finally:
        client.close()
    for outcome in outcomes:
        echo(f"[{owner}] {outcome}")
    return outcomes
