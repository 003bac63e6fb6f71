"""A small Infisical API on 127.0.0.1, enough for the real ``infisicalsdk`` to talk to.

Implements what onecluster's store sends through the SDK: Universal Auth login, listing raw
secrets filtered by project, environment, path and tag (with or without values), creating and
updating a secret by name, and looking up / creating a project tag. Failures can be injected
(:meth:`FakeInfisical.fail` answers with a status code, :meth:`FakeInfisical.hang` stalls past the
client's timeout). Requests are recorded without bodies or headers: they may hold values.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from .jsonhttp import Call, serve

HIDDEN = "<hidden-by-infisical>"
STAMP = "2026-01-01T00:00:00.000Z"


@dataclass
class StoredSecret:
    value: str
    tags: set[str] = field(default_factory=set)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 1


@dataclass
class Request:
    """One request as the server saw it (method, path, query; never bodies or headers)."""

    method: str
    path: str
    query: dict[str, str]


class FakeInfisical:
    """The fake's state and controls; :meth:`start` serves it on a free 127.0.0.1 port."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        # project id → environment slug → folder path → name → secret
        self.projects: dict[str, dict[str, dict[str, dict[str, StoredSecret]]]] = {}
        self.tags: dict[str, dict[str, str]] = {}  # project id → slug → tag id
        self.tokens: set[str] = set()
        self.requests: list[Request] = []
        self._failure: tuple[int, str, str] | None = None
        self._hang = threading.Event()
        self._hang.set()
        self._server: ThreadingHTTPServer | None = None

    # setup ----------------------------------------------------------------------------------

    def add_project(self, project: str, environments: dict[str, list[str]]) -> None:
        """Create ``project`` with ``{environment: [folder paths]}``."""
        self.projects[project] = {
            env: {p: {} for p in paths} for env, paths in environments.items()
        }
        self.tags.setdefault(project, {})

    def put(self, project: str, env: str, path: str, name: str, value: str, *tags: str) -> None:
        """Store a secret with the given tag slugs (tags are created as needed)."""
        for slug in tags:
            self.tags[project].setdefault(slug, str(uuid.uuid4()))
        self.projects[project][env][path][name] = StoredSecret(value, set(tags))

    def secret(self, project: str, env: str, path: str, name: str) -> StoredSecret | None:
        return self.projects[project][env][path].get(name)

    def fail(self, status: int, message: str = "injected failure", prefix: str = "/") -> None:
        """Answer every request whose path starts with ``prefix`` with ``status``."""
        self._failure = (status, message, prefix)

    def hang(self) -> None:
        """Stall every request until :meth:`release` (or shutdown): the client must time out."""
        self._hang.clear()

    def release(self) -> None:
        self._hang.set()

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    # serving --------------------------------------------------------------------------------

    def start(self) -> str:
        def answer(call: Call) -> tuple[int, Any]:
            self.requests.append(Request(call.method, call.path, call.query))
            self._hang.wait()
            auth = call.headers.get("Authorization", "")
            return self._answer(call.method, call.path, call.query, call.body, auth)

        self._server, url = serve(answer, "fake-infisical")
        return url

    def start_for(self, monkeypatch: Any, project: str) -> str:
        """Start serving and point onecluster's Infisical settings at this fake and ``project``."""
        url = self.start()
        monkeypatch.setenv("INFISICAL_CLIENT_ID", self.client_id)
        monkeypatch.setenv("INFISICAL_CLIENT_SECRET", self.client_secret)
        monkeypatch.setenv("INFISICAL_SITE_URL", url)
        monkeypatch.setenv("INFISICAL_PROJECT_ID", project)
        monkeypatch.setenv("INFISICAL_TIMEOUT", "1")
        for var in ("INFISICAL_ENVIRONMENT", "INFISICAL_SECRET_PATH"):
            monkeypatch.delenv(var, raising=False)
        return url

    def stop(self) -> None:
        self._hang.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # the API --------------------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, query: dict[str, str], raw: bytes, auth: str
    ) -> tuple[int, dict[str, Any]]:
        if self._failure and path.startswith(self._failure[2]):
            status, message, _ = self._failure
            return status, {"statusCode": status, "message": message, "error": "Injected"}
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, "Body is not valid JSON")
        if method == "POST" and path == "/api/v1/auth/universal-auth/login":
            return self._login(body)
        if auth.removeprefix("Bearer ") not in self.tokens:
            return _error(401, "Token missing or invalid")
        if path == "/api/v3/secrets/raw" and method == "GET":
            return self._list(query)
        if path.startswith("/api/v3/secrets/raw/"):
            name = path.rsplit("/", 1)[1]
            if method == "GET":
                return self._get(name, query)
            if method == "POST":
                return self._create(name, body)
            if method == "PATCH":
                return self._update(name, body)
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "projects"] and len(parts) >= 5 and parts[4] == "tags":
            return self._tags(method, parts[3], parts[5:], body)
        return _error(404, f"Route {method}:{path} not found")

    def _login(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (body.get("clientId"), body.get("clientSecret")) != (self.client_id, self.client_secret):
            return _error(401, "Invalid credentials")
        token = "tok-" + uuid.uuid4().hex
        self.tokens.add(token)
        return 200, {
            "accessToken": token,
            "expiresIn": 7200,
            "accessTokenMaxTTL": 43200,
            "tokenType": "Bearer",
        }

    def _folder(
        self, project: str | None, env: str | None, path: str | None
    ) -> dict[str, StoredSecret] | tuple[int, dict[str, Any]]:
        if project not in self.projects:
            return _error(404, f"Project with ID '{project}' not found")
        envs = self.projects[project]
        if env not in envs:
            return _error(404, f"Environment with slug '{env}' in project not found")
        if (path or "/") not in envs[env]:
            return _error(404, f"Folder with path '{path}' not found")
        return envs[env][path or "/"]

    def _render(
        self, project: str, env: str, path: str, name: str, s: StoredSecret, show: bool
    ) -> dict[str, Any]:
        by_slug = self.tags[project]
        return {
            "id": s.id,
            "_id": s.id,
            "workspace": project,
            "environment": env,
            "version": s.version,
            "type": "shared",
            "secretKey": name,
            "secretValue": s.value if show else HIDDEN,
            "secretValueHidden": not show,
            "secretComment": "",
            "createdAt": STAMP,
            "updatedAt": STAMP,
            "secretPath": path,
            "tags": [
                {"id": by_slug[t], "slug": t, "name": t, "color": "#000000"} for t in sorted(s.tags)
            ],
        }

    def _list(self, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        project, env, path = q.get("workspaceId"), q.get("environment"), q.get("secretPath", "/")
        folder = self._folder(project, env, path)
        if isinstance(folder, tuple):
            return folder
        wanted = {t for t in q.get("tagSlugs", "").split(",") if t}
        show = q.get("viewSecretValue", "true") == "true"
        secrets = [
            self._render(project, env, path, name, s, show)
            for name, s in sorted(folder.items())
            if not wanted or wanted & s.tags
        ]
        return 200, {"secrets": secrets, "imports": []}

    def _get(self, name: str, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        project, env, path = q.get("workspaceId"), q.get("environment"), q.get("secretPath", "/")
        folder = self._folder(project, env, path)
        if isinstance(folder, tuple):
            return folder
        if name not in folder:
            return _error(404, f"Secret with name '{name}' not found")
        show = q.get("viewSecretValue", "true") == "true"
        return 200, {"secret": self._render(project, env, path, name, folder[name], show)}

    def _body_folder(self, body: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        """Project, environment, path named by a write's body, and that folder (or an error)."""
        project, env, path = (
            body.get("workspaceId"),
            body.get("environment"),
            body.get("secretPath"),
        )
        return project, env, path, self._folder(project, env, path)

    def _create(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        project, env, path, folder = self._body_folder(body)
        if isinstance(folder, tuple):
            return folder
        if name in folder:
            return _error(400, "Secret already exist")
        by_id = {v: k for k, v in self.tags[project].items()}
        unknown = [t for t in body.get("tagIds", []) if t not in by_id]
        if unknown:
            return _error(404, "Tag not found")
        folder[name] = StoredSecret(
            body.get("secretValue", ""), {by_id[t] for t in body.get("tagIds", [])}
        )
        return 200, {"secret": self._render(project, env, path, name, folder[name], False)}

    def _update(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        project, env, path, folder = self._body_folder(body)
        if isinstance(folder, tuple):
            return folder
        if name not in folder:
            return _error(404, f"Secret with name '{name}' not found")
        s = folder[name]
        if "secretValue" in body:
            s.value = body["secretValue"]
            s.version += 1
        if "tagIds" in body:
            by_id = {v: k for k, v in self.tags[project].items()}
            s.tags = {by_id[t] for t in body["tagIds"] if t in by_id}
        return 200, {"secret": self._render(project, env, path, name, s, False)}

    def _tags(
        self, method: str, project: str, rest: list[str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if project not in self.projects:
            return _error(404, f"Project with ID '{project}' not found")
        tags = self.tags[project]
        if method == "GET" and len(rest) == 2 and rest[0] == "slug":
            if rest[1] not in tags:
                return _error(404, f"Tag with slug '{rest[1]}' not found")
            return 200, {"tag": {"id": tags[rest[1]], "slug": rest[1], "projectId": project}}
        if method == "POST" and not rest:
            slug = body.get("slug")
            if not slug or "color" not in body:
                return _error(400, "slug and color are required")
            if slug in tags:
                return _error(400, "Tag already exists")
            tags[slug] = str(uuid.uuid4())
            return 200, {"tag": {"id": tags[slug], "slug": slug, "projectId": project}}
        return _error(404, "Route not found")


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"statusCode": status, "message": message, "error": "Error"}
