"""apps.deploy/list/status/remove against recording fakes, and every app manifest checked.

The fakes answer the read-only probes (``get ... --request-timeout=5s``, gate checks shortened to
``--timeout=5s``, ``helm status``): a rule with exit 1 makes a step look missing.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import call_task
from invoke.exceptions import Exit

from tasks import apps
from tasks.engine.context import run_context
from tasks.engine.inventory import load_inventory
from tasks.stack import STACK, WORKLOAD_LAYERS
from tests.netpol import Peer, admits
from tests.rendered import catalogue_objects, check_all

ROOT_DIR = __import__("pathlib").Path(__file__).resolve().parents[1]
PROBE = "--request-timeout=5s"
QUICK_GATE = "--timeout=5s"
STEP_LINE = re.compile(r"^# (\S+) \(\w+\)$", re.MULTILINE)


def run_task(task: str, **kwargs):
    return call_task(f"apps.{task}", **kwargs)


def steps_printed(out: str) -> list[str]:
    """The step ids a dry-run printed, in order."""
    return STEP_LINE.findall(out)


def nothing_deployed(fakes) -> None:
    """A cluster that answers but has nothing beyond Talos on it."""
    fakes.rule("kubectl", "/readyz", exit=0)
    fakes.rule("kubectl", PROBE, exit=1, stderr="NotFound")
    fakes.rule("kubectl", QUICK_GATE, exit=1, stderr="timed out")
    fakes.rule("helm", "status", exit=1, stderr="release: not found")


def platform_deployed(fakes, *missing: tuple[str, ...]) -> None:
    """Every probe passes except those whose argv holds all of one ``missing`` tuple."""
    fakes.rule("kubectl", "/readyz", exit=0)
    for match in missing:
        fakes.rule("kubectl", *match, exit=1, stderr="NotFound")
    fakes.rule("helm", "status", stdout=json.dumps({"info": {"status": "deployed"}}))


@pytest.fixture
def graph():
    return STACK.graph(load_inventory())


def expected_order(graph, *targets: str) -> list[str]:
    """Targets plus every need outside Talos, in graph order (what an empty cluster needs)."""
    wanted = set(targets)
    for t in targets:
        wanted |= graph.ancestors(t)
    return [i for i in graph.order if i in wanted and not i.startswith("talos/")]


def probed(graph, printed: list[str]) -> list[str]:
    """``printed`` without bundles that have no manifests in this checkout (nothing to probe)."""
    return [s for s in printed if not (hasattr(graph[s], "files") and not graph[s].files())]


MEALIE_OWN = [
    "secrets/mealie-postgres",
    "apps/mealie-postgres",
    "apps/mealie-postgres-ready",
    "apps/mealie",
]


def test_dry_run_on_empty_cluster_prints_mealie_and_all_its_needs_in_order(
    fake_tools, capsys, graph
):
    nothing_deployed(fake_tools)
    run_task("deploy", name=["mealie"], dry_run=True)
    printed = steps_printed(capsys.readouterr().out)
    assert printed == expected_order(graph, "apps/mealie")
    assert [s for s in printed if s in MEALIE_OWN] == MEALIE_OWN
    assert printed[-1] == "apps/mealie"
    assert not [s for s in printed if s.startswith(("apps/wordpress", "ai/", "talos/"))]
    # a dry-run only asked questions: no apply, no install
    for argv in fake_tools.argvs():
        assert "apply" not in argv and "upgrade" not in argv, argv


def test_dry_run_with_platform_in_place_prints_only_mealies_own_steps(fake_tools, capsys, graph):
    platform_deployed(
        fake_tools,
        ("secret", "mealie-postgres", PROBE),
        ("statefulset.apps/mealie-postgres", PROBE),
        ("statefulset/mealie-postgres", QUICK_GATE),
        ("deployment.apps/mealie", PROBE),
    )
    run_task("deploy", name=["mealie"], dry_run=True)
    out = capsys.readouterr().out
    assert probed(graph, steps_printed(out)) == MEALIE_OWN
    assert "already in place, not redeployed: " in out
    assert "storage/longhorn-ready" in out.split("already in place")[1].splitlines()[0]


def test_an_in_place_need_is_not_probed_further(fake_tools, capsys, graph):
    platform_deployed(fake_tools, ("deployment.apps/mealie", PROBE))
    run_task("deploy", name=["mealie"], dry_run=True)
    assert probed(graph, steps_printed(capsys.readouterr().out)) == ["apps/mealie"]
    asked = " ".join(" ".join(a) for a in fake_tools.argvs())
    # the database gate held, so nothing below it (Longhorn's manager, the CRDs) was asked about
    assert "mealie-postgres" in asked
    assert "statefulset.apps/mealie-postgres" not in asked and "crd/" not in asked


def test_two_apps_sharing_needs_deploy_each_need_once(fake_tools, capsys, graph):
    nothing_deployed(fake_tools)
    run_task("deploy", name=["mealie", "wordpress"], dry_run=True)
    printed = steps_printed(capsys.readouterr().out)
    assert len(printed) == len(set(printed))
    assert printed == expected_order(graph, "apps/mealie", "apps/wordpress")
    assert {"storage/longhorn-extras", "network/gateway-programmed"} <= set(printed)


def test_second_app_does_not_redeploy_a_need_the_first_one_deployed(fake_tools, capsys, graph):
    # the RWX StorageClass bundle (a need of both apps) is missing once: the first deploy applies
    # it, after which its objects are found
    fake_tools.rule("kubectl", "/readyz", exit=0)
    fake_tools.rule(
        "kubectl", "-o name", "storageclass.storage.k8s.io/longhorn-rwx", exit=1, times=1
    )
    fake_tools.rule("kubectl", "deployment.apps/mealie", PROBE, exit=1)
    fake_tools.rule("kubectl", "deployment.apps/wordpress", PROBE, exit=1)
    fake_tools.rule("helm", "status", stdout=json.dumps({"info": {"status": "deployed"}}))
    shared = "storage/longhorn-extras"
    assert shared in graph["apps/mealie"].needs and shared in graph["apps/wordpress"].needs

    run_task("deploy", name=["mealie"])
    first = ran(capsys.readouterr().out)
    run_task("deploy", name=["wordpress"])
    second = ran(capsys.readouterr().out)

    assert shared in first
    assert first[-1] == "apps/mealie"
    assert probed(graph, second) == ["apps/wordpress"]
    record = "--field-manager=onecluster-record"  # each run's write of the in-cluster record
    applies = [a for a in fake_tools.argvs("kubectl") if "apply" in a and record not in a]
    # one apply for the shared bundle, one per app: the second deploy did not apply it again
    assert len(applies) == 3


def ran(out: str) -> list[str]:
    """The step ids a real run finished, in order."""
    return re.findall(r"^==> done\s+(\S+)", out, re.MULTILINE)


def test_unknown_name_lists_the_known_apps(fake_tools):
    with pytest.raises(Exit) as err:
        run_task("deploy", name=["mealy"])
    message = str(err.value)
    assert "unknown app 'mealy'" in message
    known = [w.name for w in apps.declared(load_inventory())]
    assert known  # an empty list would check nothing
    for name in known:
        assert name in message


def test_real_deploy_refuses_when_no_cluster_answers(fake_tools):
    fake_tools.rule("kubectl", "/readyz", exit=1, stderr="connection refused")
    with pytest.raises(Exit) as err:
        run_task("deploy", name=["mealie"])
    assert "cluster API does not answer" in str(err.value)
    assert not [a for a in fake_tools.argvs() if "apply" in a]


def test_remove_keeps_volumes_and_namespace(fake_tools, capsys):
    run_task("remove", name="mealie")
    argvs = fake_tools.argvs("kubectl")
    assert [a[3:5] for a in argvs] == [["delete", "--ignore-not-found"]] * 2
    assert not [a for a in argvs if "namespace" in a]
    assert "volumes in namespace mealie were kept" in capsys.readouterr().out


def test_remove_deletes_no_persistent_volume_claims(fake_tools):
    w = next(w for w in apps.declared(load_inventory()) if w.name == "wordpress")
    from tasks.workloads.workload import removal_commands

    inv = load_inventory()
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        commands = removal_commands(w, STACK.graph(inv), ctx, purge=False)
    deleted = b"".join(c.stdin or b"" for c in commands)
    assert b"kind: Deployment" in deleted and b"kind: StatefulSet" in deleted
    assert b"PersistentVolumeClaim" not in deleted and b"kind: Namespace" not in deleted


def test_purge_needs_yes(fake_tools):
    with pytest.raises(Exit) as err:
        run_task("remove", name="mealie", purge=True)
    assert "--yes" in str(err.value)
    assert fake_tools.calls() == []


def test_purge_with_yes_deletes_the_namespace_last(fake_tools):
    run_task("remove", name="mealie", purge=True, yes=True)
    last = fake_tools.argvs("kubectl")[-1]
    assert last[3:6] == ["delete", "namespace", "mealie"]


def test_remove_of_a_chart_app_uninstalls_the_release(fake_tools):
    run_task("remove", name="headlamp")
    # helm --kubeconfig K uninstall ...
    assert fake_tools.argvs("helm")[0][3:6] == ["uninstall", "headlamp", "--namespace"]


def test_status_reports_a_missing_workload(fake_tools, capsys):
    platform_deployed(fake_tools, ("deployment/mealie", QUICK_GATE))
    with pytest.raises(Exit):
        run_task("status", name="mealie")
    out = capsys.readouterr().out
    assert re.search(r"deployment/mealie\s+mealie\s+no", out)
    assert re.search(r"statefulset/mealie-postgres\s+mealie\s+yes", out)


def test_list_shows_needs_and_health(fake_tools, capsys):
    platform_deployed(fake_tools, ("deployment/wordpress", QUICK_GATE))
    run_task("list")
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line}
    assert re.search(r"storage/longhorn-extras.*\byes\s+yes\b", rows["mealie"])
    assert re.search(r"\byes\s+no\b", rows["wordpress"])
    assert "network/kube-vip-cloud-provider" in rows["dispatcharr"]


def test_list_without_a_cluster_says_health_is_unknown(fake_tools, capsys):
    fake_tools.rule("kubectl", "/readyz", exit=1)
    run_task("list")
    assert "no cluster answered" in capsys.readouterr().out


# Every manifest of the AI and apps layers, rendered for the reference inventory -----------------

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


# (step id, object) for every object the workload layers apply, chart extras included
OBJECTS = catalogue_objects(WORKLOAD_LAYERS)


def obj_id(item: tuple[str, dict]) -> str:
    step, doc = item
    return f"{step}:{doc['kind']}/{doc['metadata']['name']}"


def find(kind: str, name: str, namespace: str) -> dict:
    for _, doc in OBJECTS:
        meta = doc["metadata"]
        if (doc["kind"], meta["name"], meta.get("namespace")) == (kind, name, namespace):
            return doc
    raise AssertionError(f"no {kind} {namespace}/{name} among the rendered manifests")


@pytest.mark.parametrize("item", OBJECTS, ids=[obj_id(o) for o in OBJECTS])
def test_manifest_validates_against_its_schema(item, request):
    step, doc = item
    group, _, _ = doc["apiVersion"].rpartition("/")
    if ("." in group and not group.endswith(".k8s.io")) or group.startswith("gateway."):
        request.getfixturevalue("reference")  # custom resources need the reference CRDs
    check_all([doc], step)


def pod_specs() -> list[tuple[str, dict]]:
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
        for _, doc in OBJECTS
        if doc["kind"] in WORKLOAD_KINDS
    ]


CONTAINERS = [
    (f"{owner}:{c['name']}", c, init)
    for owner, spec in pod_specs()
    for init, group in ((False, spec["containers"]), (True, spec.get("initContainers", [])))
    for c in group
]


@pytest.mark.parametrize("name,container,init", CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_every_container_is_pinned_and_sized_and_probed(name, container, init):
    image = container["image"]
    repo, _, tag = image.rpartition(":")
    assert repo and tag and "/" not in tag and tag != "latest", f"{image} is not pinned by tag"
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) >= {"cpu", "memory"}, f"{name}: {bound}"
    if not init:  # init containers run to completion; kubelet does not probe them
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in container, f"{name} has no {probe}"


def declared_databases() -> list[tuple[str, str, str]]:
    """(namespace, StatefulSet name, size) of every database the workload layers declare."""
    inv = load_inventory()
    return [
        (w.namespace, f"{w.name}-{db.kind}", db.size)
        for declared in WORKLOAD_LAYERS.values()
        for w in declared(inv)
        for db in w.database_specs()
    ]


DATABASES = declared_databases()


@pytest.mark.parametrize("namespace,name,size", DATABASES, ids=[d[1] for d in DATABASES])
def test_every_database_is_on_rwo_longhorn(namespace, name, size):
    sts = find("StatefulSet", name, namespace)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "longhorn"
    assert claim["spec"]["resources"]["requests"]["storage"] == size


def _replicas(doc: dict) -> int:
    return doc["spec"].get("replicas", 1)


def _selected(pdb: dict) -> list[dict]:
    """The workloads (Deployment, StatefulSet) in the PDB's namespace its selector matches."""
    wanted = pdb["spec"]["selector"]["matchLabels"].items()
    return [
        doc
        for _, doc in OBJECTS
        if doc["kind"] in ("Deployment", "StatefulSet")
        and doc["metadata"].get("namespace") == pdb["metadata"].get("namespace")
        and wanted <= doc["spec"]["template"]["metadata"]["labels"].items()
    ]


@pytest.mark.parametrize(
    "pdb",
    [d for _, d in OBJECTS if d["kind"] == "PodDisruptionBudget"],
    ids=lambda d: f"{d['metadata'].get('namespace')}/{d['metadata']['name']}",
)
def test_no_budget_blocks_a_drain(pdb):
    # talos.upgrade drains every node with `kubectl drain` (evictions honour PDBs) and stops the
    # whole upgrade when the drain cannot finish: a budget that allows no disruption would stop
    # every upgrade at the node that runs the pod
    (workload,) = _selected(pdb)
    spec = pdb["spec"]
    assert "minAvailable" not in spec or spec["minAvailable"] < _replicas(workload), pdb
    assert spec.get("maxUnavailable", 1) != 0, pdb


def _secret_refs(doc: dict) -> set[str]:
    spec = doc["spec"]["template"]["spec"]
    names = set()
    for c in spec["containers"] + spec.get("initContainers", []):
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        names |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
    return names


def test_every_secret_a_pod_reads_is_synced_from_infisical():
    graph = STACK.graph(load_inventory())
    synced = {
        (s.namespace, s.name) for c in graph.steps() if c.layer == "secrets" for s in c.secrets
    }
    for _, doc in OBJECTS:
        if doc["kind"] in WORKLOAD_KINDS:
            ns = doc["metadata"]["namespace"]
            for name in _secret_refs(doc):
                assert (ns, name) in synced, f"{ns}/{name} is read but never synced"


INV = load_inventory()


def _mount(kind: str, name: str, ns: str, claim: str) -> str:
    spec = find(kind, name, ns)["spec"]["template"]["spec"]
    volume = next(
        v["name"]
        for v in spec.get("volumes", [])
        if v.get("persistentVolumeClaim", {}).get("claimName") == claim
    )
    return next(
        m["mountPath"] for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume
    )


def _route(ns: str, name: str) -> tuple[str, str, str, list[str]]:
    spec = find("HTTPRoute", name, ns)["spec"]
    (parent,) = spec["parentRefs"]
    filters = [f["extensionRef"]["name"] for r in spec["rules"] for f in r.get("filters", [])]
    return parent["name"], parent["namespace"], spec["hostnames"][0], filters


# (what the seed says, how to read it from the manifests, the expected value)
SEED = [
    ("mealie: 3 replicas", lambda: find("Deployment", "mealie", "mealie")["spec"]["replicas"], 3),
    (
        "mealie: shared data volume is RWX",
        lambda: find("PersistentVolumeClaim", "mealie-data", "mealie")["spec"]["accessModes"],
        ["ReadWriteMany"],
    ),
    (
        "mealie: every replica mounts it",
        lambda: _mount("Deployment", "mealie", "mealie", "mealie-data"),
        "/app/data",
    ),
    (
        "mealie: public route on default-gateway",
        lambda: _route("mealie", "mealie"),
        ("default-gateway", "traefik", INV.domains.hosts["mealie"], []),
    ),
    (
        "wordpress: 3 replicas",
        lambda: find("Deployment", "wordpress", "wordpress")["spec"]["replicas"],
        3,
    ),
    (
        "wordpress: 15Gi RWX",
        lambda: find("PersistentVolumeClaim", "wordpress-html", "wordpress")["spec"],
        {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "longhorn-rwx",
            "resources": {"requests": {"storage": "15Gi"}},
        },
    ),
    (
        "wordpress: mounted at /var/www/html",
        lambda: _mount("Deployment", "wordpress", "wordpress", "wordpress-html"),
        "/var/www/html",
    ),
    (
        "wordpress: public route for the blog's domain",
        lambda: _route("wordpress", "wordpress"),
        ("default-gateway", "traefik", INV.domains.hosts["wordpress"], []),
    ),
    (
        "dispatcharr: LoadBalancer on its static IP",
        lambda: (
            find("Service", "dispatcharr", "dispatcharr")["spec"]["type"],
            find("Service", "dispatcharr", "dispatcharr")["metadata"]["annotations"],
        ),
        (
            "LoadBalancer",
            {"kube-vip.io/loadbalancerIPs": str(INV.network.static_ips["dispatcharr"])},
        ),
    ),
    (
        "dispatcharr: web and Celery worker",
        lambda: sorted(
            c["name"]
            for n in ("dispatcharr-web", "dispatcharr-celery")
            for c in find("Deployment", n, "dispatcharr")["spec"]["template"]["spec"]["containers"]
        ),
        ["celery", "web"],
    ),
    (
        "dispatcharr: web and worker share the data volume",
        lambda: {
            _mount("Deployment", n, "dispatcharr", "dispatcharr-data")
            for n in ("dispatcharr-web", "dispatcharr-celery")
        },
        {"/data"},
    ),
    (
        "headlamp: LAN only",
        lambda: _route("headlamp", "headlamp"),
        ("default-gateway", "traefik", INV.domains.hosts["headlamp"], ["lan-only"]),
    ),
    (
        "sterlingpdf: LAN only",
        lambda: _route("sterlingpdf", "sterlingpdf"),
        ("default-gateway", "traefik", INV.domains.hosts["sterlingpdf"], ["lan-only"]),
    ),
    (
        "LAN-only middleware admits the LAN subnet only",
        lambda: find("Middleware", "lan-only", "sterlingpdf")["spec"]["ipAllowList"]["sourceRange"],
        [str(INV.network.subnet)],
    ),
]


def _nanobot_config() -> dict:
    import string

    template = find("ConfigMap", "nanobot-config", "nanobot")["data"]["config.template.json"]
    names = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ANTHROPIC_API_KEY")
    return json.loads(string.Template(template).substitute({n: "x" for n in names}))


def _in_namespace(kind: str, ns: str) -> list[str]:
    return [
        d["metadata"]["name"]
        for _, d in OBJECTS
        if d["kind"] == kind and d["metadata"].get("namespace") == ns
    ]


def _mcp_values() -> dict:
    import yaml

    return yaml.safe_load((ROOT_DIR / "helm-values" / "kubernetes-mcp-server.yaml").read_text())


SEED += [
    (
        "mcp server: ClusterIP, no ingress",
        lambda: (_mcp_values()["service"]["type"], _mcp_values()["ingress"]["enabled"]),
        ("ClusterIP", False),
    ),
    (
        "nanobot: Slack Socket Mode",
        lambda: _nanobot_config()["channels"]["slack"]["mode"],
        "socket",
    ),
    (
        "nanobot: no Service, no Ingress, no route",
        lambda: [_in_namespace(k, "nanobot") for k in ("Service", "Ingress", "HTTPRoute")],
        [[], [], []],
    ),
    ("nanobot: one pod", lambda: find("Deployment", "nanobot", "nanobot")["spec"]["replicas"], 1),
    (
        "nanobot: 40-message memory window",
        lambda: _nanobot_config()["agents"]["defaults"]["memoryWindow"],
        40,
    ),
    (
        "nanobot: memory on a volume",
        lambda: _mount("Deployment", "nanobot", "nanobot", "nanobot-memory"),
        "/data",
    ),
    (
        "openclaw: its own volume",
        lambda: _in_namespace("PersistentVolumeClaim", "openclaw"),
        ["openclaw-home"],
    ),
]


@pytest.mark.parametrize("what,read,expected", SEED, ids=[s[0] for s in SEED])
def test_seed_setting(what, read, expected):
    assert read() == expected


def test_invoke_cli_dry_run_prints_mealie_and_its_missing_needs(fake_tools, graph):
    import subprocess
    import sys

    platform_deployed(fake_tools, ("deployment.apps/mealie", PROBE))
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "apps.deploy", "--name", "mealie", "--dry-run"],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert probed(graph, steps_printed(result.stdout)) == ["apps/mealie"]
    assert "kubectl --kubeconfig" in result.stdout and "apply --server-side" in result.stdout


def test_status_without_a_cluster_says_so(fake_tools):
    fake_tools.rule("kubectl", "/readyz", exit=1, stderr="connection refused")
    with pytest.raises(Exit) as err:
        run_task("status", name="mealie")
    assert "cluster API does not answer" in str(err.value)


# Dispatcharr's Redis: a password as well as its policy -----------------------------------------


def test_dispatcharr_reaches_its_redis_with_the_password_from_infisical():
    graph = STACK.graph(load_inventory())
    (redis_secret,) = graph["apps/dispatcharr-redis"].secrets
    assert (redis_secret.name, dict(redis_secret.keys)) == (
        "dispatcharr-redis",
        {"password": "DISPATCHARR_REDIS_PASSWORD"},
    )
    env = find("ConfigMap", "dispatcharr-env", "dispatcharr")["data"]
    # a broker URL of its own would carry no password: Dispatcharr builds it from REDIS_*
    assert "CELERY_BROKER_URL" not in env and "REDIS_URL" not in env
    assert env["REDIS_HOST"] == "dispatcharr-redis"
    for name in ("dispatcharr-web", "dispatcharr-celery"):
        (container,) = find("Deployment", name, "dispatcharr")["spec"]["template"]["spec"][
            "containers"
        ]
        refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
        assert refs["REDIS_PASSWORD"] == {"name": "dispatcharr-redis", "key": "password"}, name


def _peer(kind: str, name: str, ns: str) -> Peer:
    template = find(kind, name, ns)["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"]
             for p in c.get("ports", []) if "name" in p}  # fmt: skip
    return Peer(ns, template["metadata"]["labels"], ports)


def test_dispatcharr_redis_admits_only_dispatcharr():
    policies = [d for _, d in OBJECTS]
    redis = _peer("StatefulSet", "dispatcharr-redis", "dispatcharr")
    assert admits(policies, _peer("Deployment", "dispatcharr-celery", "dispatcharr"), redis, 6379)
    assert admits(policies, _peer("Deployment", "dispatcharr-web", "dispatcharr"), redis, 6379)
    assert not admits(policies, _peer("Deployment", "mealie", "mealie"), redis, 6379)
    assert not admits(policies, Peer("traefik", {"app.kubernetes.io/name": "traefik"}), redis, 6379)


@pytest.mark.parametrize(
    ("kind", "name", "ns", "port"),
    [
        ("Deployment", "mealie", "mealie", 9000),
        ("Deployment", "wordpress", "wordpress", 80),
        ("Deployment", "sterlingpdf", "sterlingpdf", 8080),
    ],
)
def test_routed_apps_take_traefik_and_nothing_else(kind, name, ns, port):
    policies = [d for _, d in OBJECTS]
    app = _peer(kind, name, ns)
    traefik = Peer("traefik", {"app.kubernetes.io/name": "traefik"})
    assert admits(policies, traefik, app, port)
    assert not admits(policies, traefik, app, port + 1)
    assert not admits(policies, Peer("openclaw", {"app.kubernetes.io/name": "openclaw"}), app, port)


def test_an_apps_pods_reach_its_own_databases_only():
    policies = [d for _, d in OBJECTS]
    mealie = _peer("Deployment", "mealie", "mealie")
    postgres = _peer("StatefulSet", "mealie-postgres", "mealie")
    assert admits(policies, mealie, postgres, 5432)
    assert not admits(policies, _peer("Deployment", "wordpress", "wordpress"), postgres, 5432)


def test_dispatcharr_web_port_is_open_to_its_lan_clients_and_the_rest_closed():
    policies = [d for _, d in OBJECTS]
    web = _peer("Deployment", "dispatcharr-web", "dispatcharr")
    anyone = Peer("default", {})
    assert admits(policies, anyone, web, 9191)
    assert not admits(policies, anyone, web, 8000)
    assert not admits(
        policies, anyone, _peer("Deployment", "dispatcharr-celery", "dispatcharr"), 9191
    )
