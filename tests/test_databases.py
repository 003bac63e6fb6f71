"""Databases come from one template per kind, filled per declaration; validation checks them so.

``Workload(databases=("postgres",))`` renders ``manifests/databases/postgres.yaml`` with the app's
names (``((database.name))`` and the rest beside the inventory's placeholders); nothing of a
database is written per app.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tasks.engine.components import SecretSpec
from tasks.engine.context import run_context
from tasks.engine.errors import InputError, OneclusterError
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.engine.render import render_text
from tasks.stack import STACK, WORKLOAD_LAYERS
from tasks.validate import validation
from tasks.workloads.workload import (
    DATABASE_TEMPLATES,
    DEFAULT_DATABASE_SIZE,
    Database,
    DatabaseBundle,
    Workload,
)
from tests.rendered import check_all

INV = load_inventory()
TEMPLATES = sorted((REPO_ROOT / DATABASE_TEMPLATES).glob("*.yaml"))
KINDS = [t.stem for t in TEMPLATES]


def new_app(*databases: str | Database) -> Workload:
    """An app no one has declared yet: the one declaration adding it would need."""
    return Workload(
        layer="apps",
        name="notes",
        namespace="notes-ns",
        needs=(),
        summary="a new app",
        databases=databases,
    )


def objects(step: DatabaseBundle) -> dict[str, dict]:
    """The objects a deploy applies for ``step``, by kind (each kind once in a template)."""
    with run_context(INV, dry_run=True, fetch_kubeconfig=False) as ctx:
        docs = [d for d in yaml.safe_load_all(step.applied(ctx)) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), [d["kind"] for d in docs]
    return by_kind


def test_a_new_app_gets_its_postgres_from_one_declaration():
    bundle, gate, app = new_app("postgres").components()
    assert (bundle.id, gate.id, app.id) == (
        "apps/notes-postgres",
        "apps/notes-postgres-ready",
        "apps/notes",
    )
    assert gate.needs == (bundle.id,) and gate.id in app.needs
    found = objects(bundle)
    assert set(found) == {"Namespace", "Service", "StatefulSet"}
    for doc in found.values():
        if doc["kind"] != "Namespace":
            assert (doc["metadata"]["name"], doc["metadata"]["namespace"]) == (
                "notes-postgres",
                "notes-ns",
            )
    sts = found["StatefulSet"]
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "notes-postgres"
    assert labels["app.kubernetes.io/part-of"] == "notes"
    assert found["Service"]["spec"]["selector"] == labels
    # no PDB: `talos.upgrade` drains each node and stops when a drain cannot finish, so a budget
    # on the one pod would stop every upgrade; the pod stops cleanly within its grace period
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_DB"]["value"] == env["POSTGRES_USER"]["value"] == "notes"
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "notes-postgres",
        "key": "password",
    }
    assert "notes" in container["readinessProbe"]["exec"]["command"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == DEFAULT_DATABASE_SIZE
    assert claim["metadata"]["labels"]["app.kubernetes.io/part-of"] == "notes"


def test_a_declared_size_reaches_the_volume_claim():
    bundle, _, _ = new_app(Database("postgres", size="25Gi")).components()
    (claim,) = objects(bundle)["StatefulSet"]["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "25Gi"


@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_valid_objects_for_any_app(kind):
    (bundle, *_) = new_app(kind).components()
    assert (
        isinstance(bundle, DatabaseBundle)
        and bundle.template == REPO_ROOT / DATABASE_TEMPLATES / f"{kind}.yaml"
    )
    found = objects(bundle)
    assert {"StatefulSet", "Service"} <= set(found)
    assert "PodDisruptionBudget" not in found
    text = bundle.template.read_text()
    # nothing of one app is left in the template: every name comes from the declaration
    for taken in (w.name for declared in WORKLOAD_LAYERS.values() for w in declared(INV)):
        assert taken not in text.lower(), f"{bundle.template}: names {taken}"
    check_all(found.values(), str(bundle.template))


def test_an_unknown_kind_is_an_error_naming_the_kinds_there_are():
    with pytest.raises(OneclusterError) as err:
        new_app("mongo").components()
    message = str(err.value)
    assert "apps/notes" in message and "'mongo'" in message
    for kind in KINDS:
        assert kind in message


def test_no_app_keeps_its_own_copy_of_a_database():
    copies = [
        p
        for w in (w for declared in WORKLOAD_LAYERS.values() for w in declared(INV))
        for db in w.database_specs()
        for p in [REPO_ROOT / "manifests" / w.layer / w.name / db.kind]
        if p.exists()
    ]
    assert not copies, f"per-app database folders are never read: {copies}"


# Rendering with a template's own values ---------------------------------------------------------


def test_own_values_are_filled_beside_the_inventorys():
    text = "name: ((database.name))\ncluster: ((cluster.name))\n"
    out = render_text(text, INV, "t.yaml", {"database.name": "notes-postgres"})
    assert out == f"name: notes-postgres\ncluster: {INV.cluster.name}\n"


def test_an_unknown_placeholder_in_a_template_names_file_and_line():
    text = "a: ((database.name))\nb: ((database.nmae))\n"
    with pytest.raises(InputError) as err:
        render_text(text, INV, "manifests/databases/x.yaml", {"database.name": "n"})
    (error,) = err.value.errors
    assert (error.file, error.field) == ("manifests/databases/x.yaml", "line 2")
    assert "((database.nmae))" in error.message and "((database.name))" in error.fix


def test_a_template_value_cannot_shadow_the_inventory():
    with pytest.raises(ValueError, match=r"cluster\.name"):
        render_text("x: ((cluster.name))", INV, "t.yaml", {"cluster.name": "other"})


# Validation checks databases as they are deployed -----------------------------------------------


def test_validation_checks_each_declared_database_not_the_raw_template(tmp_path: Path):
    source = validation.ChartSource(cache=tmp_path, reference=None)
    report = validation.run(STACK, INV, source=source, reference=None)
    # walked raw, a template's ((database.*)) placeholders would be errors
    assert report.errors == []
    databases = [c for c in STACK.components(INV) if isinstance(c, DatabaseBundle)]
    templates = {d.template for d in databases}
    assert databases
    (line,) = [x for x in report.lines if x.startswith("manifests: ")]
    assert f"{len(databases)} database bundles from {len(templates)} templates" in line
    unused = [x for x in report.lines if "no declared database uses this template" in x]
    assert len(unused) == len(set(TEMPLATES) - templates)


def test_a_broken_template_is_reported_per_database_with_file_and_line(tmp_path: Path):
    (tmp_path / "broken.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ((database.name))\n"
        "  namespace: ((database.nmespace))\nspec:\n  ports: [{port: 1}]\n"
    )
    (tmp_path / "typo.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ((database.name))\n"
        "  namespace: ((database.namespace))\nspec:\n  prots: [{port: 1}]\n"
    )
    steps = [
        DatabaseBundle(
            layer="apps",
            name=f"notes-{kind}",
            database=kind,
            path=str(tmp_path),
            namespace="notes",
            part_of="notes",
        )
        for kind in ("broken", "typo")
    ]
    catalog = STACK.with_components(lambda inv: steps)
    report = validation.run(
        catalog,
        INV,
        source=validation.ChartSource(cache=tmp_path / "none", reference=None),
        manifests=tmp_path / "no-plain-manifests",
        reference=None,
    )
    problems = {(e.file, e.field) for e in report.errors}
    assert (str(tmp_path / "broken.yaml"), "line 5") in problems
    assert any(
        f == f"{tmp_path / 'typo.yaml'} for apps/notes-typo" and "Service" in field
        for f, field in problems
    ), problems
    # the project's own templates are used by no database of this catalogue: said, not hidden
    for template in TEMPLATES:
        assert any(
            str(template.relative_to(REPO_ROOT)) in x and "not validated" in x for x in report.lines
        )


def test_redis_requires_the_password_of_its_secret():
    """Its NetworkPolicy is not its only guard: redis-server gets `requirepass` from the Secret
    named like the database (on stdin, never in argv), and redis-cli the same through
    REDISCLI_AUTH."""
    (bundle, _gate, _app) = new_app("redis").components()
    pod = objects(bundle)["StatefulSet"]["spec"]["template"]["spec"]
    (redis,) = pod["containers"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in redis["env"]}
    assert env == {
        "REDIS_PASSWORD": {"name": "notes-redis", "key": "password"},
        "REDISCLI_AUTH": {"name": "notes-redis", "key": "password"},
    }
    script = " ".join(redis["args"])
    assert "requirepass $REDIS_PASSWORD" in script
    assert "exec redis-server -" in script
    assert "--requirepass" not in script and "-a" not in " ".join(redis["command"])


def test_each_database_syncs_its_own_secret_before_it_starts():
    app = Workload(
        layer="apps", name="notes", namespace="notes-ns", needs=(), summary="a new app",
        databases=("postgres", "redis"),
        secrets=(
            SecretSpec("notes-ns", "notes-postgres", {"password": "NOTES_POSTGRES_PASSWORD"}),
            SecretSpec("notes-ns", "notes-redis", {"password": "NOTES_REDIS_PASSWORD"}),
            SecretSpec("notes-ns", "notes", {"API_KEY": "NOTES_API_KEY"}),
        ),
    )  # fmt: skip
    postgres, _, redis, _, notes = app.components()
    assert [s.name for s in postgres.secrets] == ["notes-postgres"]
    assert [s.name for s in redis.secrets] == ["notes-redis"]
    assert [s.name for s in notes.secrets] == ["notes"]
