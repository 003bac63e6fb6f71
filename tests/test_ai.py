"""The AI layer: the MCP server's access switch, Nanobot's outbound-only Slack pod, OpenClaw."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
import yaml
from conftest import call_task

from tasks import ai
from tasks.engine.context import run_context
from tasks.engine.errors import InventoryError
from tasks.engine.inventory import DEFAULT_INVENTORY, load_inventory
from tasks.stack import STACK, WORKLOAD_LAYERS
from tasks.validate.valuescheck import check_values, schema_errors
from tests.netpol import Peer, admits
from tests.rendered import catalogue_objects, chart_of, rendered_values

ROOT = Path(__file__).resolve().parents[1]
MCP_VALUES = ROOT / "helm-values" / "kubernetes-mcp-server.yaml"


def inventory_with(tmp_path: Path, **settings: str) -> Path:
    """The reference inventory with some ``settings.ai`` values replaced."""
    text = DEFAULT_INVENTORY.read_text()
    for key, value in settings.items():
        text, n = re.subn(rf"^(\s+{key}:) .*$", rf"\1 {value}", text, flags=re.MULTILINE)
        assert n == 1, key
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return path


def mcp_values(inv) -> dict:
    graph = STACK.graph(inv)
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        return yaml.safe_load(graph["ai/kubernetes-mcp-server"].rendered_values(ctx))


def bundle_docs(step_id: str, inv=None) -> list[dict]:
    inv = inv or load_inventory()
    graph = STACK.graph(inv)
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        return [d for d in yaml.safe_load_all(graph[step_id].rendered(ctx)) if d]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    (found,) = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return found


ACCESS = [
    # mode, ClusterRole bound, read_only, disable_destructive
    ("cluster-admin", "cluster-admin", False, False),
    ("non-destructive", "cluster-admin", False, True),
    ("read-only", "view", True, True),
]


@pytest.mark.parametrize("mode,role,read_only,no_destructive", ACCESS, ids=[a[0] for a in ACCESS])
def test_mcp_access_switch(tmp_path, mode, role, read_only, no_destructive):
    values = mcp_values(load_inventory(inventory_with(tmp_path, mcpAccess=mode)))
    assert values["rbac"]["extraClusterRoleBindings"] == [
        {"name": "access", "roleRef": {"name": role, "external": True}}
    ]
    assert values["config"]["read_only"] is read_only
    assert values["config"]["disable_destructive"] is no_destructive


def test_reference_inventory_binds_cluster_admin_as_in_the_seed():
    values = mcp_values(load_inventory())
    assert values["rbac"]["extraClusterRoleBindings"][0]["roleRef"]["name"] == "cluster-admin"


def test_unknown_access_mode_names_field_and_fix(tmp_path):
    inv = load_inventory(inventory_with(tmp_path, mcpAccess="admin"))
    with pytest.raises(InventoryError) as err:
        ai.components(inv)
    message = str(err.value)
    assert "settings.ai.mcpAccess" in message and "read-only" in message
    assert "cluster.yaml" in message


@pytest.mark.parametrize("image", ["ghcr.io/example/nanobot", "ghcr.io/example/nanobot:latest"])
def test_nanobot_image_must_be_pinned(tmp_path, image):
    inv = load_inventory(inventory_with(tmp_path, nanobotImage=image))
    with pytest.raises(InventoryError, match=r"settings\.ai\.nanobotImage"):
        ai.components(inv)


def test_mcp_server_is_in_cluster_only_with_a_pinned_image():
    values = yaml.safe_load(MCP_VALUES.read_text())
    assert values["ingress"]["enabled"] is False
    assert values["httpRoute"]["enabled"] is False
    assert values["service"]["type"] == "ClusterIP"
    assert values["image"]["version"] not in ("", "latest")
    assert {"requests", "limits"} <= set(values["resources"])


def chart_workloads() -> dict[str, str]:
    """Release (its values file's name) → step id, of every workload installed from a chart."""
    inv = load_inventory()
    return {
        w.chart.release or w.name: w.id
        for declared in WORKLOAD_LAYERS.values()
        for w in declared(inv)
        if w.chart is not None
    }


STEPS = chart_workloads()


@pytest.fixture(scope="module")
def graph():
    return STACK.graph(load_inventory())


@pytest.mark.parametrize("chart", sorted(STEPS))
def test_values_use_only_keys_the_chart_has(reference, graph, chart):
    # maps the chart copies whole (the MCP server's config, probes, resources) are the engine's
    # to know: rendered verbatim, or checked against their Kubernetes type
    data = chart_of(graph[STEPS[chart]], reference)
    result = check_values(rendered_values(chart), data, f"helm-values/{chart}.yaml")
    assert not result.errors, "\n".join(str(e) for e in result.errors)


def test_headlamp_values_match_the_chart_schema(reference, graph):
    chart = chart_of(graph["apps/headlamp"], reference)
    assert chart.schema, "the headlamp chart ships a values.schema.json"
    inv = load_inventory()
    with run_context(inv, dry_run=True, fetch_kubeconfig=False) as ctx:
        values = yaml.safe_load(graph["apps/headlamp"].rendered_values(ctx))
    errors = schema_errors(values, chart, "apps/headlamp values")
    assert not errors, "\n".join(str(e) for e in errors)


def mcp_url() -> str:
    values = yaml.safe_load(MCP_VALUES.read_text())
    return f"http://kubernetes-mcp-server.{ai.MCP_NAMESPACE}.svc.cluster.local:{values['service']['port']}/mcp"


# Nanobot -----------------------------------------------------------------------------------------


def nanobot_config(docs: list[dict]) -> dict:
    """The config the init container renders, with stand-in values for the secret env vars."""
    template = one(docs, "ConfigMap", "nanobot-config")["data"]["config.template.json"]
    env = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_APP_TOKEN": "xapp-x", "ANTHROPIC_API_KEY": "k"}
    return json.loads(string.Template(template).substitute(env))


def test_nanobot_is_one_pod_listening_on_nothing():
    docs = bundle_docs("ai/nanobot")
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"Service", "Ingress", "HTTPRoute"}
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 1
    pod = deploy["spec"]["template"]["spec"]
    assert all("ports" not in c for c in pod["containers"] + pod["initContainers"])
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}  # no rule: deny all
    config = nanobot_config(docs)
    assert config["gateway"]["host"] == "127.0.0.1"


def test_nanobot_uses_slack_socket_mode_with_tokens_from_infisical():
    config = nanobot_config(bundle_docs("ai/nanobot"))
    slack = config["channels"]["slack"]
    assert (slack["enabled"], slack["mode"]) == (True, "socket")
    assert (slack["botToken"], slack["appToken"]) == ("xoxb-x", "xapp-x")
    (spec,) = next(w for w in ai.declared(load_inventory()) if w.name == "nanobot").secrets
    assert spec.keys["SLACK_BOT_TOKEN"] == "NANOBOT_SLACK_BOT_TOKEN"
    assert spec.keys["SLACK_APP_TOKEN"] == "NANOBOT_SLACK_APP_TOKEN"
    init = one(bundle_docs("ai/nanobot"), "Deployment")["spec"]["template"]["spec"]
    assert init["initContainers"][0]["envFrom"] == [{"secretRef": {"name": spec.name}}]
    # the rendered config (it holds the tokens) lives in memory, never on a disk
    config_volume = next(v for v in init["volumes"] if v["name"] == "config")
    assert config_volume["emptyDir"]["medium"] == "Memory"


def test_nanobot_memory_is_a_40_message_window_on_a_volume():
    docs = bundle_docs("ai/nanobot")
    defaults = nanobot_config(docs)["agents"]["defaults"]
    assert defaults["memoryWindow"] == 40
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == claim["name"])
    assert defaults["workspace"].startswith(mount["mountPath"] + "/")
    pvc = one(docs, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim["persistentVolumeClaim"]["claimName"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_nanobot_uses_the_mcp_server_and_asks_before_destroying():
    docs = bundle_docs("ai/nanobot")
    servers = nanobot_config(docs)["tools"]["mcpServers"]
    assert servers == {"kubernetes": {"url": mcp_url()}}
    rules = one(docs, "ConfigMap", "nanobot-config")["data"]["AGENTS.md"]
    assert "Confirmation before destructive actions" in rules
    assert 'answers "yes"' in rules


def test_nanobot_image_comes_from_the_inventory():
    inv = load_inventory()
    pod = one(bundle_docs("ai/nanobot", inv), "Deployment")["spec"]["template"]["spec"]
    images = {c["image"] for c in pod["containers"] + pod["initContainers"]}
    assert images == {inv.setting("ai", "nanobotImage")}


def test_nanobot_probe_script_compiles():
    source = one(bundle_docs("ai/nanobot"), "ConfigMap", "nanobot-config")["data"]["probe.py"]
    compile(source, "probe.py", "exec")


def test_nanobot_dockerfile_pins_versions():
    text = (ROOT / "docker" / "nanobot" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.MULTILINE).group(1)
    assert ":" in base and not base.endswith(":latest")
    assert re.search(r"^ARG NANOBOT_VERSION=\d+\.\d+\.\d+", text, re.MULTILINE)
    assert '"nanobot-ai==${NANOBOT_VERSION}"' in text


# OpenClaw ----------------------------------------------------------------------------------------


def test_openclaw_skills_configmap_is_generated_from_the_repo_files():
    docs = bundle_docs("ai/openclaw")
    data = one(docs, "ConfigMap", "openclaw-skills")["data"]
    assert data == {
        n: (ai.SKILLS_DIR / n).read_text() for n in ("SOUL.md", "AGENTS.md", "TOOLS.md")
    }
    mounts = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    mounted = {m["subPath"] for m in mounts if m["name"] == "skills"}
    assert mounted == set(data)


def test_openclaw_has_its_own_volume_and_the_same_mcp_server():
    docs = bundle_docs("ai/openclaw")
    pvc = one(docs, "PersistentVolumeClaim")
    assert (pvc["metadata"]["namespace"], pvc["spec"]["accessModes"]) == (
        "openclaw",
        ["ReadWriteOnce"],
    )
    seed = json.loads(one(docs, "ConfigMap", "openclaw-config")["data"]["openclaw.json"])
    assert seed["mcp"]["servers"]["kubernetes"]["url"] == mcp_url()
    assert seed["gateway"]["bind"] != "loopback"


# Tasks -------------------------------------------------------------------------------------------


def test_ai_deploy_of_nanobot_brings_the_mcp_server_and_its_secrets(fake_tools, capsys):
    fake_tools.rule("kubectl", "/readyz", exit=0)
    fake_tools.rule("kubectl", "-n nanobot", "--request-timeout=5s", exit=1)
    fake_tools.rule("kubectl", "secret", "nanobot", exit=1)
    fake_tools.rule("helm", "status", "kubernetes-mcp-server", exit=1)
    fake_tools.rule("helm", "status", stdout=json.dumps({"info": {"status": "deployed"}}))
    call_task("ai.deploy", name=["nanobot"], dry_run=True)
    printed = re.findall(r"^# (\S+) \(\w+\)$", capsys.readouterr().out, re.MULTILINE)
    assert printed == ["secrets/nanobot", "ai/kubernetes-mcp-server", "ai/nanobot"]


# Who may reach the MCP server ------------------------------------------------------------------


def _pod_of(objects: list[tuple[str, dict]], namespace: str, name: str) -> Peer:
    """The Pods of Deployment ``namespace/name`` as the rendered manifests make them."""
    (deploy,) = [
        d
        for _, d in objects
        if d["kind"] == "Deployment"
        and d["metadata"]["name"] == name
        and d["metadata"]["namespace"] == namespace
    ]
    template = deploy["spec"]["template"]
    ports = {
        p["name"]: p["containerPort"]
        for c in template["spec"]["containers"]
        for p in c.get("ports", [])
        if "name" in p
    }
    return Peer(namespace, template["metadata"]["labels"], ports)


@pytest.fixture(scope="module")
def ai_objects() -> list[tuple[str, dict]]:
    return catalogue_objects(["ai", "apps", "network"])


def test_the_mcp_policy_is_applied_before_the_server(ai_objects) -> None:
    graph = STACK.graph(load_inventory())
    assert "ai/kubernetes-mcp-server-policy" in graph["ai/kubernetes-mcp-server"].needs
    assert "network/network-policies-ready" in graph["ai/kubernetes-mcp-server-policy"].needs


@pytest.mark.parametrize(
    ("namespace", "labels", "admitted"),
    [
        ("nanobot", {"app.kubernetes.io/name": "nanobot"}, True),
        ("openclaw", {"app.kubernetes.io/name": "openclaw"}, True),
        # the assistants' labels in another namespace are not the assistants
        ("mealie", {"app.kubernetes.io/name": "nanobot"}, False),
        ("openclaw", {"app.kubernetes.io/name": "something-else"}, False),
        ("traefik", {"app.kubernetes.io/name": "traefik"}, False),
        ("monitoring", {"app.kubernetes.io/name": "prometheus"}, False),
        ("default", {}, False),
        ("mcp", {"app.kubernetes.io/name": "curl"}, False),  # not even from its own namespace
    ],
)
def test_only_nanobot_and_openclaw_reach_the_mcp_server(
    ai_objects, namespace: str, labels: dict, admitted: bool
) -> None:
    policies = [d for _, d in ai_objects]
    server = Peer("mcp", {"app.kubernetes.io/name": "kubernetes-mcp-server"}, {"http": 8080})
    assert admits(policies, Peer(namespace, labels), server, 8080) is admitted


def test_the_rendered_assistants_are_the_ones_admitted(ai_objects) -> None:
    """The labels the policy names are the ones the assistants' Deployments give their Pods."""
    policies = [d for _, d in ai_objects]
    server = Peer("mcp", {"app.kubernetes.io/name": "kubernetes-mcp-server"}, {"http": 8080})
    for namespace in ("nanobot", "openclaw"):
        assistant = _pod_of(ai_objects, namespace, namespace)
        assert admits(policies, assistant, server, 8080)
        assert not admits(policies, assistant, server, 9999)  # the server's port only


def test_nothing_reaches_the_assistants(ai_objects) -> None:
    policies = [d for _, d in ai_objects]
    mcp_pod = Peer("mcp", {"app.kubernetes.io/name": "kubernetes-mcp-server"})
    for namespace in ("nanobot", "openclaw"):
        assistant = _pod_of(ai_objects, namespace, namespace)
        for port in (*assistant.ports.values(), 80):
            assert not admits(policies, mcp_pod, assistant, port)
