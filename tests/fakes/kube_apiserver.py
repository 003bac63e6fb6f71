"""A tiny Kubernetes API server on 127.0.0.1: Namespaces and Secrets, GET and server-side apply,
and the list of every namespace's Secrets by label selector.

Enough for the kubernetes Python client as onecluster's secret sync drives it, with honest apply
semantics: every field manager owns the leaf fields of its last applied configuration; a field it
applied before and leaves out now is removed unless another manager still owns it; a conflicting
field needs ``force``; and an apply that changes nothing keeps the resourceVersion. Requests are
recorded as method, path and query only (bodies hold Secret data).
"""

from __future__ import annotations

import base64
import binascii
import copy
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from .jsonhttp import Call, serve

APPLY = "application/apply-patch+yaml"
# identity fields: part of every applied configuration, owned by no one
IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}

Leaf = tuple[str, ...]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str


@dataclass
class Stored:
    obj: dict[str, Any]
    managers: dict[str, set[Leaf]] = field(default_factory=dict)


def leaves(obj: Any, prefix: Leaf = ()) -> dict[Leaf, Any]:
    """Leaf paths of a configuration, with their values (maps are walked, lists are leaves)."""
    if isinstance(obj, dict) and obj:
        out: dict[Leaf, Any] = {}
        for k, v in obj.items():
            out.update(leaves(v, (*prefix, k)))
        return out
    return {prefix: obj}


def _get(obj: dict[str, Any], path: Leaf) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _set(obj: dict[str, Any], path: Leaf, value: Any) -> None:
    for part in path[:-1]:
        obj = obj.setdefault(part, {})
    obj[path[-1]] = copy.deepcopy(value)


def _delete(obj: dict[str, Any], path: Leaf) -> None:
    parents = []
    for part in path[:-1]:
        if part not in obj:
            return
        parents.append((obj, part))
        obj = obj[part]
    obj.pop(path[-1], None)
    for parent, part in reversed(parents):  # drop maps left empty
        if parent[part] == {}:
            del parent[part]


def _fields_v1(paths: set[Leaf]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


class FakeKubeAPI:
    """The fake's objects and request log; :meth:`start` serves them on a free port."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Stored] = {}  # (kind, namespace, name)
        self.requests: list[Request] = []
        self._version = 100
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._failure: tuple[int, bool] | None = None
        self.url = ""

    def fail(self, status: int, *, echo_body: bool = False) -> None:
        """Refuse every write with ``status``; ``echo_body`` puts the request body in the error
        message, as a careless server or proxy might (the client must not print it)."""
        self._failure = (status, echo_body)

    # inspection ------------------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        stored = self.objects.get((kind, namespace, name))
        return copy.deepcopy(stored.obj) if stored else None

    def secret_values(self, namespace: str, name: str) -> dict[str, str]:
        obj = self.get("Secret", name, namespace) or {}
        return {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig for this server (plain http on loopback, no credentials)."""
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        return path

    # serving ---------------------------------------------------------------------------------

    def start(self) -> str:
        def answer(call: Call) -> tuple[int, Any]:
            ctype = (call.headers.get("Content-Type") or "").split(";")[0].strip()
            self.requests.append(Request(call.method, call.path, call.query, ctype))
            with self._lock:
                return self._answer(call.method, call.path, call.query, ctype, call.body)

        self._server, self.url = serve(answer, "fake-kube")
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # the API ---------------------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, query: dict[str, str], ctype: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if path.rstrip("/") == "/version" and method == "GET":
            return 200, {
                "major": "1",
                "minor": "35",
                "gitVersion": "v1.35.0-fake",
                "gitCommit": "fake",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if parts[:2] != ["api", "v1"]:
            return _status(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        rest = parts[2:]
        if rest == ["secrets"] and method == "GET":  # every namespace's, by label selector
            wanted = dict(
                p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p
            )
            items = [
                self._render(stored) for key, stored in sorted(self.objects.items())
                if key[0] == "Secret" and all(
                    (stored.obj["metadata"].get("labels") or {}).get(k) == v
                    for k, v in wanted.items()
                )
            ]  # fmt: skip
            return 200, {"apiVersion": "v1", "kind": "SecretList", "metadata": {}, "items": items}
        if len(rest) == 2 and rest[0] == "namespaces":
            key = ("Namespace", "", rest[1])
        elif len(rest) == 4 and rest[0] == "namespaces" and rest[2] == "secrets":
            key = ("Secret", rest[1], rest[3])
        else:
            return _status(
                404, "NotFound", f"the server could not find the requested resource {path}"
            )
        if method == "GET":
            stored = self.objects.get(key)
            if stored is None:
                return _status(404, "NotFound", f'{key[0].lower()}s "{key[2]}" not found')
            return 200, self._render(stored)
        if method == "DELETE" and key[0] == "Namespace" and key in self.objects:
            # namespace deletion takes its Secrets with it (no finalizers here)
            for k in [k for k in self.objects if k == key or k[1] == key[2]]:
                del self.objects[k]
            return 200, _status(200, "", "deleted")[1] | {"status": "Success"}
        if method == "PATCH" and self._failure:
            status, echo = self._failure
            said = raw.decode("utf-8", "replace") if echo else "refused by the test"
            return _status(status, "Forbidden" if status == 403 else "InternalError", said)
        if method == "PATCH":
            return self._apply(key, query, ctype, raw)
        return _status(405, "MethodNotAllowed", f"{method} is not supported by this fake")

    def _render(self, stored: Stored) -> dict[str, Any]:
        obj = copy.deepcopy(stored.obj)
        obj["metadata"]["managedFields"] = [
            {
                "manager": m,
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(paths),
            }
            for m, paths in sorted(stored.managers.items())
        ]
        return obj

    def _apply(
        self, key: tuple[str, str, str], query: dict[str, str], ctype: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        kind, namespace, name = key
        if ctype != APPLY:
            return _status(415, "UnsupportedMediaType", f"this fake only serves {APPLY} patches")
        manager = query.get("fieldManager", "")
        if not manager:
            return _status(400, "BadRequest", "fieldManager is required for apply patch")
        try:
            config = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            return _status(400, "BadRequest", f"error decoding YAML: {exc}")
        if not isinstance(config, dict):
            return _status(400, "BadRequest", "apply patch is not an object")
        meta = config.get("metadata") or {}
        if (config.get("apiVersion"), config.get("kind")) != ("v1", kind):
            return _status(400, "BadRequest", f"expected apiVersion v1, kind {kind}")
        if meta.get("name") != name or (meta.get("namespace") or "") != namespace:
            return _status(
                400, "BadRequest", "the name/namespace of the object does not match the URL"
            )
        if kind == "Secret":
            if ("Namespace", "", namespace) not in self.objects:
                return _status(404, "NotFound", f'namespaces "{namespace}" not found')
            for k, v in (config.get("data") or {}).items():
                try:
                    base64.b64decode(v, validate=True)
                except (binascii.Error, TypeError):
                    return _status(
                        422,
                        "Invalid",
                        f"Secret {name!r} is invalid: data[{k}]: illegal base64 data",
                    )
        applied = {p: v for p, v in leaves(config).items() if p not in IDENTITY}
        stored = self.objects.get(key)
        created = stored is None
        if stored is None:
            base: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": name, "uid": f"uid-{kind}-{name}"},
            }
            if namespace:
                base["metadata"]["namespace"] = namespace
            stored = Stored(base)
        obj = copy.deepcopy(stored.obj)
        managers = {m: set(p) for m, p in stored.managers.items()}
        force = query.get("force") == "true"
        conflicts = [
            (p, other)
            for p, v in applied.items()
            for other, owned in managers.items()
            if other != manager and p in owned and _get(obj, p) != v
        ]
        if conflicts and not force:
            listing = "; ".join(f'conflict with "{o}": .{".".join(p)}' for p, o in conflicts)
            return _status(
                409, "Conflict", f"Apply failed with {len(conflicts)} conflict: {listing}"
            )
        for p, other in conflicts:
            managers[other].discard(p)
        previous = managers.get(manager, set())
        for p in previous - set(applied):
            if not any(p in owned for m, owned in managers.items() if m != manager):
                _delete(obj, p)
        for p, v in applied.items():
            _set(obj, p, v)
        managers[manager] = set(applied)
        managers = {m: p for m, p in managers.items() if p}
        if created or obj != stored.obj or managers != stored.managers:
            self._version += 1
            obj["metadata"]["resourceVersion"] = str(self._version)
            self.objects[key] = Stored(obj, managers)
        return (201 if created else 200), self._render(self.objects[key])


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
