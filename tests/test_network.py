"""Networking: every setting the issue lists, where it lives; schemas, secrets and gates."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks import network
from tasks.engine.components import HelmRelease
from tasks.engine.execute import execute, plan
from tasks.engine.inventory import REPO_ROOT, load_inventory
from tasks.engine.runner import RunFailed
from tasks.stack import STACK
from tasks.validate.chartdata import crd_docs
from tasks.validate.valuescheck import check_values, schema_errors
from tests.netpol import Peer, admits
from tests.rendered import (
    INVENTORY,
    catalogue_objects,
    chart_of,
    check_all,
    check_manifest,
    find_object,
    full_chart,
    helm_template,
    lookup,
    manifest_cases,
    manifest_docs,
    rendered,
    rendered_values,
    unknown_keys,
)
from tests.settings import manifest_settings_test

INV = load_inventory(None)
MANIFESTS = REPO_ROOT / "manifests" / "network"
POOL = f"{INV.network.pool.first}-{INV.network.pool.last}"
TRAEFIK_LAN_IP = str(INV.network.static_ips["traefik-lan"])
LB_IPS_ANNOTATION = "[kube-vip.io/loadbalancerIPs]"
COMPONENTS = {c.name: c for c in network.components(INV)}
RELEASES = {c.release: c for c in COMPONENTS.values() if isinstance(c, HelmRelease)}

# (values file, key path, expected value): each networking setting of the issue in its values file
VALUES_SETTINGS = [
    ("kube-vip", "env.vip_arp", "true"),
    ("kube-vip", "env.svc_enable", "true"),
    ("kube-vip", "env.cp_enable", "false"),  # the control-plane VIP belongs to Talos
    ("kube-vip", "env.lb_enable", "false"),
    ("kube-vip", "podMonitor.enabled", True),
    ("kube-vip-cloud-provider", "cm.data.range-global", POOL),
    ("kube-vip-cloud-provider", "cm.data.search-order", "desc"),
    ("traefik", "deployment.kind", "Deployment"),
    ("traefik", "deployment.replicas", 2),
    ("traefik", "service.spec.type", "ClusterIP"),
    ("traefik", "service.additionalServices.lan.spec.type", "LoadBalancer"),
    ("traefik", f"service.additionalServices.lan.annotations.{LB_IPS_ANNOTATION}", TRAEFIK_LAN_IP),
    ("traefik", "ports.web.expose.lan", True),
    ("traefik", "ports.websecure.expose.lan", True),
    ("traefik", "providers.kubernetesIngress.enabled", True),
    ("traefik", "providers.kubernetesGateway.enabled", True),
    ("traefik", "providers.kubernetesGateway.statusAddress.service.name", "traefik-lan"),
    ("traefik", "gatewayClass.enabled", True),
    ("traefik", "gatewayClass.name", "traefik"),
    ("traefik", "gateway.enabled", False),  # default-gateway is a manifest
    ("traefik", "certificatesResolvers.cloudflare.acme.dnsChallenge.provider", "cloudflare"),
    ("traefik", "certificatesResolvers.cloudflare.acme.email", INV.domains.acme_email),
    ("traefik", "env.0.name", "CF_DNS_API_TOKEN"),
    ("traefik", "env.0.valueFrom.secretKeyRef.name", "cloudflare-api-token"),
    ("traefik", "tlsStore.default.defaultCertificate.secretName", network.WILDCARD_SECRET),
    ("traefik", "metrics.prometheus.serviceMonitor.enabled", True),
    ("cert-manager", "crds.enabled", True),
    ("cert-manager", "prometheus.servicemonitor.enabled", True),
]

# (bundle, kind, name, key path, expected): each setting that lives in a manifest
MANIFEST_SETTINGS = [
    ("default-gateway", "Gateway", "default-gateway", "metadata.namespace", "traefik"),
    ("default-gateway", "Gateway", "default-gateway", "spec.gatewayClassName", "traefik"),
    ("default-gateway", "Gateway", "default-gateway", "spec.listeners.0.protocol", "HTTP"),
    ("default-gateway", "Gateway", "default-gateway", "spec.listeners.1.protocol", "HTTPS"),
    ("default-gateway", "Gateway", "default-gateway", "spec.listeners.1.tls.mode", "Terminate"),
    (
        "default-gateway",
        "Gateway",
        "default-gateway",
        "spec.listeners.1.tls.certificateRefs.0.name",
        network.WILDCARD_SECRET,
    ),
    (
        "default-gateway",
        "Gateway",
        "default-gateway",
        "spec.listeners.0.allowedRoutes.namespaces.from",
        "All",
    ),
    (
        "default-gateway",
        "Gateway",
        "default-gateway",
        "spec.listeners.1.allowedRoutes.namespaces.from",
        "All",
    ),
    (
        "certificates",
        "ClusterIssuer",
        "letsencrypt-cloudflare",
        "spec.acme.solvers.0.dns01.cloudflare.apiTokenSecretRef.name",
        "cloudflare-api-token",
    ),
    (
        "certificates",
        "ClusterIssuer",
        "letsencrypt-cloudflare",
        "spec.acme.solvers.0.selector.dnsZones",
        [INV.domains.base],
    ),
    (
        "certificates",
        "ClusterIssuer",
        "letsencrypt-cloudflare",
        "spec.acme.email",
        INV.domains.acme_email,
    ),
    ("certificates", "Certificate", "wildcard-tls", "metadata.namespace", "traefik"),
    ("certificates", "Certificate", "wildcard-tls", "spec.secretName", network.WILDCARD_SECRET),
    (
        "certificates",
        "Certificate",
        "wildcard-tls",
        "spec.dnsNames",
        [INV.domains.base, f"*.{INV.domains.base}"],
    ),
    ("certificates", "Certificate", "wildcard-tls", "spec.issuerRef.kind", "ClusterIssuer"),
    ("cloudflared", "Deployment", "cloudflared", "spec.replicas", 3),
    (
        "cloudflared",
        "Deployment",
        "cloudflared",
        "spec.template.spec.containers.0.args",
        ["tunnel", "--no-autoupdate", "--metrics", "0.0.0.0:2000", "run"],
    ),
    (
        "cloudflared",
        "Deployment",
        "cloudflared",
        "spec.template.spec.containers.0.env.0.name",
        "TUNNEL_TOKEN",
    ),
    (
        "cloudflared",
        "Deployment",
        "cloudflared",
        "spec.template.spec.containers.0.env.0.valueFrom.secretKeyRef.name",
        "cloudflared-tunnel",
    ),
    (
        "cloudflared",
        "Deployment",
        "cloudflared",
        "spec.template.spec.containers.0.readinessProbe.httpGet.path",
        "/ready",
    ),
    (
        "cloudflared",
        "Deployment",
        "cloudflared",
        "spec.template.spec.containers.0.livenessProbe.httpGet.path",
        "/ready",
    ),
    ("cloudflared", "PodMonitor", "cloudflared", "spec.podMetricsEndpoints.0.port", "metrics"),
]


@pytest.mark.parametrize(
    ("release", "key", "expected"), VALUES_SETTINGS, ids=[f"{r}:{k}" for r, k, _ in VALUES_SETTINGS]
)
def test_values_setting(release: str, key: str, expected: Any) -> None:
    assert lookup(rendered_values(release), key) == expected


test_manifest_setting = manifest_settings_test(MANIFESTS, MANIFEST_SETTINGS)


def test_traefik_lan_ip_is_a_static_address_inside_the_pool() -> None:
    assert ipaddress.IPv4Address(TRAEFIK_LAN_IP) in INV.network.pool


def test_cloudflared_image_is_pinned() -> None:
    image = lookup(
        find_object(MANIFESTS / "cloudflared", "Deployment", "cloudflared"),
        "spec.template.spec.containers.0.image",
    )
    repo, _, tag = image.rpartition(":")
    assert repo.endswith("cloudflare/cloudflared") and tag and tag != "latest"


def test_cloudflared_container_has_requests_and_a_memory_limit() -> None:
    res = lookup(
        find_object(MANIFESTS / "cloudflared", "Deployment", "cloudflared"),
        "spec.template.spec.containers.0.resources",
    )
    assert set(res["requests"]) == {"cpu", "memory"} and "memory" in res["limits"]


def test_gateway_listener_ports_are_traefik_entry_points(reference: Path) -> None:
    """Traefik matches a listener to the entry point whose container port it names."""
    defaults = chart_of(RELEASES["traefik"], reference).values
    gateway = find_object(MANIFESTS / "default-gateway", "Gateway", "default-gateway")
    ports = {listener["protocol"]: listener["port"] for listener in gateway["spec"]["listeners"]}
    assert ports == {
        "HTTP": defaults["ports"]["web"]["port"],
        "HTTPS": defaults["ports"]["websecure"]["port"],
    }


# --- secrets: every Secret a workload reads is one a component declares ------------------------

SECRET_REFS = [
    # (component, namespace, Secret, key) as read by the values file or manifest
    ("traefik", "traefik", "cloudflare-api-token", "token"),
    ("certificates", "cert-manager", "cloudflare-api-token", "api-token"),
    ("cloudflared", "cloudflared", "cloudflared-tunnel", "token"),
]


@pytest.mark.parametrize(
    ("component", "namespace", "secret", "key"),
    SECRET_REFS,
    ids=[f"{c}:{n}/{s}" for c, n, s, _ in SECRET_REFS],
)
def test_secret_read_is_declared(component: str, namespace: str, secret: str, key: str) -> None:
    specs = {(s.namespace, s.name): s for s in COMPONENTS[component].secrets}
    assert key in specs[(namespace, secret)].keys


def test_secret_refs_match_what_the_files_read() -> None:
    traefik_env = rendered_values("traefik")["env"][0]["valueFrom"]["secretKeyRef"]
    issuer = find_object(MANIFESTS / "certificates", "ClusterIssuer", "letsencrypt-cloudflare")
    issuer_ref = issuer["spec"]["acme"]["solvers"][0]["dns01"]["cloudflare"]["apiTokenSecretRef"]
    tunnel = find_object(MANIFESTS / "cloudflared", "Deployment", "cloudflared")
    tunnel_ref = tunnel["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]
    assert [
        (traefik_env["name"], traefik_env["key"]),
        (issuer_ref["name"], issuer_ref["key"]),
        (tunnel_ref["secretKeyRef"]["name"], tunnel_ref["secretKeyRef"]["key"]),
    ] == [(s, k) for _, _, s, k in SECRET_REFS]


def test_no_secret_value_is_written_in_a_network_file() -> None:
    files = [
        *MANIFESTS.rglob("*.yaml"),
        *(REPO_ROOT / "helm-values" / f"{r}.yaml" for r in RELEASES),
    ]
    for path in files:
        for line in path.read_text().splitlines():
            assert "apiToken:" not in line and "tunnelToken" not in line, (path, line)


# --- values keys and schemas -------------------------------------------------------------------

# the releases whose charts the reference data holds (cert-manager's is fetched, not referenced);
# maps a chart renders verbatim (kube-vip's env, Traefik's ports.*.expose) are the engine's to know
VALUES_CHECKED = ["kube-vip", "kube-vip-cloud-provider", "traefik"]


@pytest.mark.parametrize("release", VALUES_CHECKED)
def test_values_keys_exist_in_the_chart(reference: Path, release: str) -> None:
    chart = chart_of(RELEASES[release], reference)
    result = check_values(rendered_values(release), chart, f"helm-values/{release}.yaml")
    assert not result.errors, "\n".join(str(e) for e in result.errors)


def test_unknown_keys_catches_a_typo(reference: Path) -> None:
    chart = chart_of(RELEASES["traefik"], reference)
    typo = {"deployment": {"replica": 2}, "providers": {"kubernetesGateway": {"enable": True}}}
    assert unknown_keys(check_values(typo, chart, "typo.yaml")) == [
        "deployment.replica",
        "providers.kubernetesGateway.enable",
    ]


def test_traefik_values_match_the_chart_schema(reference: Path) -> None:
    chart = chart_of(RELEASES["traefik"], reference)
    assert chart.schema, "the traefik chart ships a values.schema.json"
    errors = schema_errors(rendered_values("traefik"), chart, "helm-values/traefik.yaml")
    assert not errors, "\n".join(str(e) for e in errors)


# --- manifests against Kubernetes and CRD schemas ----------------------------------------------


@pytest.mark.parametrize(("path", "doc"), manifest_cases(MANIFESTS))
def test_manifest_validates(path: Path, doc: dict) -> None:
    check_manifest(path, doc)


def test_gateway_api_crds_are_the_pinned_standard_channel(reference: Path) -> None:
    folder = reference / "crds" / f"gateway-api-{network.GATEWAY_API_VERSION}"
    names = {
        doc["metadata"]["name"] for doc in crd_docs(p.read_bytes() for p in folder.glob("*.yaml"))
    }
    assert set(network.GATEWAY_API_CRDS) == names
    source = COMPONENTS["gateway-api-crds"].sources[0]
    assert f"/{network.GATEWAY_API_VERSION}/standard-install.yaml" in source


# --- gates: what each waits for, with a timeout ------------------------------------------------


@pytest.fixture(scope="module")
def plan_steps() -> dict[str, dict]:
    data = json.loads(plan(STACK, layers=["network"], fmt="json"))
    return {s["id"]: s for s in data["steps"]}


GATE_WAITS = [
    ("kube-vip-ready", ["rollout", "status", "daemonset/kube-vip", "-n", "kube-system"]),
    ("kube-vip-ready", ["rollout", "status", "deployment/kube-vip-cloud-provider"]),
    (
        "gateway-api-established",
        ["--for=condition=Established", "crd/gateways.gateway.networking.k8s.io"],
    ),
    ("cert-manager-ready", ["--for=condition=Established", "crd/certificates.cert-manager.io"]),
    ("cert-manager-ready", ["rollout", "status", "deployment/cert-manager-webhook"]),
    ("traefik-ready", ["rollout", "status", "deployment/traefik", "-n", "traefik"]),
    (
        "wildcard-certificate-ready",
        ["--for=condition=Ready", "certificate/wildcard-tls", "--timeout=600s"],
    ),
    ("gateway-programmed", ["--for=condition=Programmed", "gateway/default-gateway"]),
    ("cloudflared-ready", ["rollout", "status", "deployment/cloudflared", "-n", "cloudflared"]),
]


@pytest.mark.parametrize(("gate", "words"), GATE_WAITS, ids=[f"{g}:{w[-1]}" for g, w in GATE_WAITS])
def test_gate_waits_for(plan_steps: dict, gate: str, words: list[str]) -> None:
    commands = plan_steps[f"network/{gate}"]["commands"]
    assert any(all(w in argv for w in words) for argv in commands), commands


def test_helm_values_render_without_placeholders_left() -> None:
    for release in RELEASES:
        text = rendered(REPO_ROOT / "helm-values" / f"{release}.yaml")
        assert "((" not in text, release


# --- helm template with the full chart, when one is at hand ------------------------------------

RENDER_CASES = [
    # release, chart folder name, API versions the cluster has by then
    ("kube-vip", "kube-vip", ["monitoring.coreos.com/v1"]),
    ("kube-vip-cloud-provider", "kube-vip-cloud-provider", []),
    ("traefik", "traefik", ["monitoring.coreos.com/v1", "gateway.networking.k8s.io/v1"]),
    ("cert-manager", "cert-manager", ["monitoring.coreos.com/v1"]),
]


@pytest.mark.parametrize(
    ("release", "chart", "apis"), RENDER_CASES, ids=[r for r, _, _ in RENDER_CASES]
)
def test_chart_renders_and_objects_validate(release: str, chart: str, apis: list[str]) -> None:
    comp = RELEASES[release]
    folder = full_chart(chart, comp.version)
    objects = helm_template(comp, folder, apis)
    assert objects
    # every custom kind these charts render has its CRD in the reference data
    check_all(objects, f"helm template {release}")
    if release == "traefik":
        kinds = {(d["kind"], d["metadata"]["name"]) for d in objects}
        assert {
            ("Service", "traefik"),
            ("Service", "traefik-lan"),
            ("GatewayClass", "traefik"),
            ("ServiceMonitor", "traefik"),
        } <= kinds
        lan = next(
            d for d in objects if d["kind"] == "Service" and d["metadata"]["name"] == "traefik-lan"
        )
        assert lan["metadata"]["annotations"]["kube-vip.io/loadbalancerIPs"] == TRAEFIK_LAN_IP
        assert lookup(lan, "spec.type") == "LoadBalancer"


# --- a real run of the layer against recording fakes of helm and kubectl -----------------------


def test_layer_runs_in_order_with_values_on_stdin(fake_tools) -> None:
    execute(STACK, layers=["network"], jobs=4, preflight=False)
    calls = fake_tools.calls()
    helm = {
        c["argv"][4]: c  # helm --kubeconfig K upgrade --install RELEASE ...
        for c in calls
        if c["tool"] == "helm" and c["argv"][2:4] == ["upgrade", "--install"]
    }
    assert set(helm) == set(RELEASES)
    expected = hashlib.sha256(rendered(RELEASES["traefik"].values_path).encode()).hexdigest()
    assert helm["traefik"]["stdin_sha256"] == expected  # values on stdin, never a file or argv
    order = [" ".join(c["argv"]) for c in calls]

    def first(*words: str) -> int:
        return next(i for i, line in enumerate(order) if all(w in line for w in words))

    assert first("standard-install.yaml") < first("install traefik") < first("deployment/traefik")
    assert first("certificate/wildcard-tls") < first("gateway/default-gateway")
    assert first("deployment/traefik") < first("deployment/cloudflared")


def test_failed_gate_says_what_it_waited_for_and_what_it_saw(fake_tools) -> None:
    fake_tools.rule(
        "kubectl",
        "rollout",
        "deployment/traefik",
        exit=1,
        stderr="error: timed out waiting for the condition",
    )
    fake_tools.rule("kubectl", "get", "deployment", "traefik", stdout="traefik   1/2   2   1   5m")
    with pytest.raises(RunFailed) as failed:
        execute(STACK, layers=["network"], jobs=4, preflight=False)
    message = str(failed.value)
    assert "network/traefik-ready: waited for deployment/traefik in traefik rolled out" in message
    assert "timed out waiting for the condition" in message and "1/2" in message
    assert "skipped:" in message and "network/default-gateway" in message


# NetworkPolicy enforcement -------------------------------------------------------------------

POLICY_LAYERS = ("network", "ai", "apps")
NETPOL_DIR = REPO_ROOT / "manifests" / "network" / "network-policies"


def test_a_network_policy_implementation_runs_on_every_node() -> None:
    """Talos v1.12's Flannel enforces no NetworkPolicy: kube-network-policies, pinned, does."""
    ds = find_object(NETPOL_DIR, "DaemonSet", "kube-network-policies")
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.k8s.io/networking/kube-network-policies:v1.1.1"
    assert pod["tolerations"] == [{"operator": "Exists"}]  # control planes and tainted nodes too
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["hostNetwork"] is True
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == 9080


def test_the_policy_agent_may_read_what_it_enforces() -> None:
    role = find_object(NETPOL_DIR, "ClusterRole", "kube-network-policies")
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert {("", "pods"), ("", "namespaces"), ("networking.k8s.io", "networkpolicies")} <= granted


def test_talos_keeps_flannel_as_the_cni() -> None:
    """The policy agent completes Flannel: no patch replaces Talos' default CNI."""
    for patch in (REPO_ROOT / "talos" / "patches").glob("*.yaml"):
        for doc in yaml.safe_load_all(patch.read_text()):
            cni = ((doc or {}).get("cluster") or {}).get("network", {}).get("cni")
            assert cni in (None, {"name": "flannel"}), patch


def _requires(graph, step: str, need: str) -> bool:
    seen, todo = set(), [step]
    while todo:
        current = todo.pop()
        if current == need:
            return True
        if current not in seen:
            seen.add(current)
            todo += list(graph.components[current].needs)
    return False


def test_everything_that_relies_on_a_policy_runs_after_enforcement_starts() -> None:
    """Every step that applies a NetworkPolicy (or deploys what one protects) needs the gate."""
    graph = STACK.graph(INVENTORY)
    with_policies = {step for step, doc in catalogue_objects(POLICY_LAYERS)
                     if doc["kind"] == "NetworkPolicy"}  # fmt: skip
    assert {"ai/kubernetes-mcp-server-policy", "apps/dispatcharr-redis", "apps/headlamp"} <= (
        with_policies
    )
    workloads = {c for c in graph.components if c.split("/")[0] in ("ai", "apps")}
    for step in sorted(with_policies | workloads):
        if graph.components[step].kind == "gate":
            continue
        assert _requires(graph, step, "network/network-policies-ready"), step


def _namespaces(objects: list[tuple[str, dict]]) -> set[str]:
    found = {d["metadata"]["name"] for _, d in objects if d["kind"] == "Namespace"}
    found |= {d["metadata"]["namespace"] for _, d in objects if d["metadata"].get("namespace")}
    return found


def test_every_namespace_of_the_workloads_and_the_tunnel_denies_ingress_by_default() -> None:
    """Each namespace the ai and apps layers create, and cloudflared's, holds a policy selecting
    every Pod with no ingress rule: whatever is not allowed next to it is refused."""
    objects = catalogue_objects(POLICY_LAYERS)
    namespaces = _namespaces([(s, d) for s, d in objects if not s.startswith("network/")])
    namespaces |= {"cloudflared"}
    denies = {
        d["metadata"]["namespace"]
        for _, d in objects
        if d["kind"] == "NetworkPolicy"
        and d["spec"]["podSelector"] == {}
        and d["spec"].get("policyTypes") == ["Ingress"]
        and not d["spec"].get("ingress")
    }
    assert namespaces >= {"mcp", "nanobot", "openclaw", "mealie", "wordpress", "dispatcharr",
                          "headlamp", "sterlingpdf"}  # fmt: skip
    assert sorted(namespaces - denies) == []


def test_the_tunnel_takes_only_prometheus_scrapes() -> None:
    docs = [d for _, d in manifest_docs(REPO_ROOT / "manifests" / "network" / "cloudflared")]
    tunnel = Peer("cloudflared", {"app.kubernetes.io/name": "cloudflared"}, {"metrics": 2000})
    prometheus = Peer("monitoring", {"app.kubernetes.io/name": "prometheus"})
    assert admits(docs, prometheus, tunnel, 2000)
    assert not admits(docs, prometheus, tunnel, 8080)
    assert not admits(docs, Peer("mealie", {"app.kubernetes.io/name": "mealie"}), tunnel, 2000)


@pytest.mark.parametrize("release", ["kube-vip", "kube-vip-cloud-provider"])
def test_kube_vip_containers_have_requests_and_limits(reference: Path, release: str) -> None:
    """Sized here (kube-vip) or by the chart's own defaults (the cloud provider); neither chart has
    a probe key, which the README's list of exceptions says."""
    chart_defaults = yaml.safe_load((reference / "charts" / release / "values.yaml").read_text())
    resources = rendered_values(release).get("resources") or chart_defaults["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind
