"""Infisical as the secret store: a machine identity, one project, one cluster's tag.

Universal Auth with ``$INFISICAL_CLIENT_ID`` / ``$INFISICAL_CLIENT_SECRET``; site URL, project,
environment and folder come from the inventory's ``infisical`` section and may be overridden by
``$INFISICAL_SITE_URL``, ``$INFISICAL_PROJECT_ID``, ``$INFISICAL_ENVIRONMENT`` and
``$INFISICAL_SECRET_PATH``. Only secrets tagged with the cluster's name are visible, so one project
can serve several clusters without one reading another's values.

The SDK (``infisicalsdk``) sends its requests without a timeout and retries network errors for
about fifteen seconds, and its exceptions carry URLs and response bodies. So the HTTP session gets
an adapter that bounds every request and turns transport failures into our own exceptions, and
every SDK error is translated here into a :class:`SecretsError` that says what to fix, built from
the status code and redacted, never from the original exception text.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..engine.errors import SecretsError
from ..engine.inventory import Inventory
from ..engine.output import clipped, redact, register_secret

CLIENT_ID = "INFISICAL_CLIENT_ID"
CLIENT_SECRET = "INFISICAL_CLIENT_SECRET"
CREDENTIAL_VARS = (CLIENT_ID, CLIENT_SECRET)

# inventory field → environment variable that overrides it
OVERRIDES = {
    "site_url": "INFISICAL_SITE_URL",
    "project_id": "INFISICAL_PROJECT_ID",
    "environment": "INFISICAL_ENVIRONMENT",
    "path": "INFISICAL_SECRET_PATH",
}
TIMEOUT_VAR = "INFISICAL_TIMEOUT"
DEFAULT_TIMEOUT = 15.0
TAG_COLOR = "#3b82f6"
# what Infisical returns instead of a value when asked for names only
HIDDEN = "<hidden-by-infisical>"

T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    """Where this cluster's secrets live in Infisical, after environment overrides."""

    site_url: str
    project_id: str
    environment: str
    path: str
    tag: str
    timeout: float

    def __str__(self) -> str:
        return (
            f"project {self.project_id}, environment {self.environment!r}, path {self.path!r}, "
            f"tag {self.tag!r}"
        )


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def location(inventory: Inventory, env: Mapping[str, str] | None = None) -> Location:
    """The inventory's ``infisical`` section with ``$INFISICAL_*`` overrides applied and checked."""
    env = os.environ if env is None else env
    spec = inventory.infisical
    values = {f: env.get(var) or getattr(spec, f) for f, var in OVERRIDES.items()}
    site = values["site_url"].rstrip("/")
    parts = urlsplit(site)
    origin = OVERRIDES["site_url"] if env.get(OVERRIDES["site_url"]) else "infisical.siteUrl"
    # plain http only to this machine (a local Infisical, or the tests' fake); elsewhere the
    # machine identity's secret would travel in clear text
    if not (parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname))):
        raise SecretsError(
            f"{origin}: expected an https:// URL, got {site!r} "
            "(fix: use e.g. https://app.infisical.com; http:// is accepted only for localhost)"
        )
    path = values["path"] if values["path"].startswith("/") else "/" + values["path"]
    raw_timeout = env.get(TIMEOUT_VAR)
    try:
        timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT
    except ValueError:
        timeout = -1.0
    if timeout <= 0:
        raise SecretsError(f"${TIMEOUT_VAR}: expected seconds > 0, got {raw_timeout!r}")
    return Location(
        site_url=site,
        project_id=values["project_id"],
        environment=values["environment"],
        path=path,
        tag=inventory.name,
        timeout=timeout,
    )


def missing_credentials(env: Mapping[str, str] | None = None) -> list[str]:
    """The machine-identity variables that are unset or empty."""
    env = os.environ if env is None else env
    return [v for v in CREDENTIAL_VARS if not env.get(v)]


def credentials(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The machine identity from the environment, or one error naming every variable to set."""
    env = os.environ if env is None else env
    missing = missing_credentials(env)
    if missing:
        raise SecretsError(
            f"Infisical credentials missing: set {' and '.join('$' + v for v in missing)} "
            "(the client id and secret of a Universal Auth machine identity with read access to "
            "the project; see README, Secrets), then run again. Nothing was changed."
        )
    client_id, client_secret = env[CLIENT_ID], env[CLIENT_SECRET]
    register_secret(client_secret)
    return client_id, client_secret


# transport ------------------------------------------------------------------------------------


# not an OSError or a requests exception: the SDK retries those for ~15s, and must not
class TransportFailure(Exception):
    """The request never got an HTTP answer; ``timed_out`` says whether it waited too long."""

    def __init__(self, timed_out: bool) -> None:
        self.timed_out = timed_out
        super().__init__("timed out" if timed_out else "connection failed")


def _bounded_adapter(timeout: float) -> Any:
    """An HTTP adapter with a timeout on every request and quick retries of refused connects."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class BoundedAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = timeout
            try:
                return super().send(request, *args, **kwargs)
            except requests.exceptions.Timeout:
                raise TransportFailure(timed_out=True) from None
            except requests.exceptions.RequestException:
                raise TransportFailure(timed_out=False) from None

    # reads are never retried: a server that did not answer in time gets no second wait
    # (read=False re-raises a read timeout as itself rather than as a generic connection error)
    return BoundedAdapter(
        max_retries=Retry(
            total=2,
            connect=2,
            read=False,
            status=0,
            other=0,
            backoff_factor=0.2,
            raise_on_status=False,
        )
    )


def _explain(exc: Exception, what: str, where: Location) -> SecretsError:
    """A SecretsError for an SDK failure, saying what to fix (the SDK's text is not reused)."""
    from infisical_sdk.infisical_requests import APIError, InfisicalError

    if isinstance(exc, TransportFailure):
        if exc.timed_out:
            text = (
                f"Infisical at {where.site_url} did not answer within {where.timeout:g}s while "
                f"trying to {what} (timeout). Check the site URL and the network, or raise "
                f"${TIMEOUT_VAR}."
            )
        else:
            text = (
                f"could not connect to Infisical at {where.site_url} to {what}. Check "
                f"infisical.siteUrl (or ${OVERRIDES['site_url']}) and the network."
            )
    elif isinstance(exc, APIError):
        status = exc.status_code
        detail = ""
        if isinstance(exc.response, dict) and isinstance(exc.response.get("message"), str):
            detail = f" ({clipped(exc.response['message'], 200)})"
        if status in (401, 403):
            text = (
                f"Infisical refused the machine identity (HTTP {status}){detail} while trying "
                f"to {what}. Check ${CLIENT_ID} / ${CLIENT_SECRET} and that the identity is a "
                f"member of project {where.project_id} with access to environment "
                f"{where.environment!r}."
            )
        elif status == 404:
            text = (
                f"Infisical found no project {where.project_id} with environment "
                f"{where.environment!r} and path {where.path!r} (HTTP 404){detail} while trying "
                f"to {what}. Check infisical.projectId / environment / path in the inventory "
                f"(or ${OVERRIDES['project_id']}, ${OVERRIDES['environment']}, "
                f"${OVERRIDES['path']})."
            )
        elif status >= 500:
            text = (
                f"Infisical at {where.site_url} failed with a server error (HTTP {status})"
                f"{detail} while trying to {what}. Try again later."
            )
        else:
            text = f"Infisical rejected the request to {what} (HTTP {status}){detail}."
    elif isinstance(exc, InfisicalError):
        text = f"Infisical answered with something that is not valid JSON while trying to {what}."
    else:
        text = f"the Infisical client failed while trying to {what}: {type(exc).__name__}."
    return SecretsError(redact(text + " Nothing was changed."))


# the store -------------------------------------------------------------------------------------


class InfisicalStore:
    """A SecretStore over one Infisical project, environment, path and cluster tag.

    A run opens one store (``RunContext.secret_store``), and the store lists the cluster's values
    once, at the first :meth:`read`: every sync step of the run reads from that one listing (it
    would otherwise download every value again per step). What the run writes is kept in it too.
    """

    def __init__(self, client: Any, where: Location) -> None:
        self._client = client
        self.where = where
        self._names: set[str] | None = None
        self._values: dict[str, str] | None = None
        self._tag_id: str | None = None
        # sync steps run in parallel and share this store; the SDK shares one requests.Session
        self._lock = threading.RLock()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            with self._lock:
                return fn()
        except SecretsError:
            raise
        except Exception as exc:
            raise _explain(exc, what, self.where) from None

    def _list(self, *, values: bool, tagged: bool = True) -> list[Any]:
        w = self.where
        response = self._call(
            f"list the secrets of {w}" if tagged else f"look up secret names in {w}",
            lambda: self._client.secrets.list_secrets(
                environment_slug=w.environment,
                secret_path=w.path,
                project_id=w.project_id,
                expand_secret_references=True,
                view_secret_value=values,
                recursive=False,
                include_imports=False,
                tag_filters=[w.tag] if tagged else [],
            ),
        )
        if values:
            for secret in response.secrets:
                register_secret(secret.secretValue)
        return list(response.secrets)

    def names(self) -> set[str]:
        """Every secret name tagged with this cluster (values are not fetched)."""
        with self._lock:
            if self._names is None:
                self._names = {s.secretKey for s in self._list(values=False)}
            return set(self._names)

    def read(self, names: Iterable[str]) -> dict[str, str]:
        """The values of ``names`` (tagged with this cluster) that exist; all registered at once.

        The first read of the store lists every value of the cluster; later reads use that list.
        """
        with self._lock:
            if self._values is None:
                self._values = {s.secretKey: s.secretValue for s in self._list(values=True)}
            values = self._values
        return {n: values[n] for n in set(names) if n in values}

    def write(self, name: str, value: str) -> None:
        """Create or update ``name`` tagged with this cluster; refuse another cluster's secret."""
        register_secret(value)
        with self._lock:
            if self._existing(name):
                self._update(name, value)
            else:
                self._create(name, value)

    def create(self, name: str, value: str) -> str:
        """Create ``name`` only if absent; return the stored value (another run's, if it won).

        Infisical refuses a second secret of one name in a folder (HTTP 400 "Secret already
        exist"), so two processes racing here end with one secret: the loser reads the winner's.
        """
        register_secret(value)
        with self._lock:
            if not self._existing(name):
                try:
                    self._create(name, value)
                    return value
                except SecretsError:
                    if not self._existing(name):  # failed for another reason than the race
                        raise
            stored = (self._values or {}).get(name)
            if stored is None:  # the run's listing predates the other run's create: list again
                self._values = None
                stored = self.read([name]).get(name)
            if self._names is not None:
                self._names.add(name)
            if stored is None:
                raise SecretsError(
                    f"Infisical secret {name} exists in {self.where} but has no value."
                )
            return stored

    def _existing(self, name: str) -> bool:
        """Whether ``name`` exists in the folder: refuse it when it lacks this cluster's tag."""
        w = self.where
        existing = {s.secretKey: s for s in self._list(values=False, tagged=False)}
        if name not in existing:
            return False
        tags = {t.get("slug") if isinstance(t, dict) else t.slug for t in existing[name].tags}
        if w.tag not in tags:
            raise SecretsError(
                f"Infisical secret {name} already exists in {w} without the tag {w.tag!r}: "
                "it belongs to another cluster or was made by hand. Tag it with the cluster's "
                "name in Infisical, or use another path. Nothing was changed."
            )
        return True

    def _update(self, name: str, value: str) -> None:
        w = self.where
        self._call(
            f"update secret {name} in {w}",
            lambda: self._client.secrets.update_secret_by_name(
                current_secret_name=name,
                secret_path=w.path,
                environment_slug=w.environment,
                project_id=w.project_id,
                secret_value=value,
            ),
        )

    def _create(self, name: str, value: str) -> None:
        w = self.where
        tag_id = self._ensure_tag()
        self._call(
            f"create secret {name} in {w}",
            lambda: self._client.secrets.create_secret_by_name(
                secret_name=name,
                secret_path=w.path,
                environment_slug=w.environment,
                project_id=w.project_id,
                secret_value=value,
                tags_ids=[tag_id],
            ),
        )
        if self._names is not None:
            self._names.add(name)
        if self._values is not None:
            self._values[name] = value

    def _ensure_tag(self) -> str:
        """The id of the project's tag named after the cluster, created when missing."""
        if self._tag_id is not None:
            return self._tag_id
        from infisical_sdk.infisical_requests import APIError

        w = self.where
        api = self._client.api
        try:
            found = api.get(path=f"/api/v1/projects/{w.project_id}/tags/slug/{w.tag}", model=dict)
            tag = found.data
        except APIError as exc:
            if exc.status_code != 404:
                raise _explain(exc, f"look up tag {w.tag!r}", w) from None
            tag = self._call(
                f"create tag {w.tag!r} in project {w.project_id}",
                lambda: (
                    api.post(
                        path=f"/api/v1/projects/{w.project_id}/tags",
                        json={"slug": w.tag, "color": TAG_COLOR},
                        model=dict,
                    ).data
                ),
            )
        except Exception as exc:
            raise _explain(exc, f"look up tag {w.tag!r}", w) from None
        body = tag.get("tag") or tag.get("workspaceTag") or {}
        if not body.get("id"):
            raise SecretsError(f"Infisical returned no id for tag {w.tag!r} in {w}.")
        self._tag_id = str(body["id"])
        return self._tag_id

    def close(self) -> None:
        self._client.close()


def open_store(inventory: Inventory, env: Mapping[str, str] | None = None) -> InfisicalStore:
    """Log in with the machine identity from the environment and return a SecretStore."""
    where = location(inventory, env)
    client_id, client_secret = credentials(env)
    from infisical_sdk import InfisicalSDKClient

    # no SDK cache: values stay only where this module puts them, and every read is fresh
    client = InfisicalSDKClient(host=where.site_url, cache_ttl=None)
    adapter = _bounded_adapter(where.timeout)
    client.api.session.mount("https://", adapter)
    client.api.session.mount("http://", adapter)
    login = InfisicalStore(client, where)._call(
        f"log in to Infisical at {where.site_url} as machine identity {client_id}",
        lambda: client.auth.universal_auth.login(client_id=client_id, client_secret=client_secret),
    )
    register_secret(login.accessToken)
    return InfisicalStore(client, where)
