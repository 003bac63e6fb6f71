"""Network layer: the shared Gateway is programmed and the routes behind it answer."""

import pytest

from tasks.verify.profile import KIND_APPS, KIND_GATEWAY_HTTP
from tasks.verify.verification import condition, http_status

pytestmark = pytest.mark.layer("network")


def routes(config, inventory):
    """(host, address, tls) to call: public hosts over the internet, or kind's mapped port."""
    hosts = inventory.domains.hosts
    if config.getoption("--profile") == "kind":
        return [(hosts[app], KIND_GATEWAY_HTTP, False) for app in KIND_APPS]
    base = inventory.domains.base
    public = [h for h in hosts.values() if h == base or h.endswith(f".{base}")]
    return [(h, f"{h}:443", True) for h in sorted(public)]


def pytest_generate_tests(metafunc):
    if "route" in metafunc.fixturenames:
        from tasks.engine.inventory import load_inventory

        found = routes(metafunc.config, load_inventory(metafunc.config.getoption("--cluster")))
        metafunc.parametrize("route", found, ids=[r[0] for r in found])


def test_gateway_programmed(kube):
    gateway = kube.json("get", "gateway", "default-gateway", "-n", "traefik")
    assert condition(gateway, "Programmed") == "True", gateway.get("status")


def test_route_answers(route):
    host, address, tls = route
    status = http_status(address, host, tls=tls)
    assert 200 <= status < 400, f"{host} via {address} answered HTTP {status}"
