"""What a node was last given: keyed fingerprints of a Talos apply's inputs and of its config.

A node's config is made from the role template ``talosctl gen config`` writes (from the bundle
and the cluster's patches), the node's own patch, and the pinned Talos release. After a node's
config is applied, the run's record (:mod:`tasks.engine.record`) keeps, for
``talos/apply-<node>``, the fingerprint of exactly those inputs and the fingerprint of the config
they made. A re-run whose inputs have that fingerprint, reading from the node a config with that
fingerprint, knows the node runs what it would render: it renders, validates and applies nothing
for it (no ``talosctl machineconfig patch`` either). Any doubt (no record, other inputs, another
live config, ``--force``) and the node's config is rendered and compared as a whole. The role
templates are the same from the same bundle: ``talosctl gen config --with-secrets`` draws no
secret of its own (at v1.12, ``pkg/machinery/config/generate/generate.go`` makes a new bundle only
when it is given none; the talosconfig's fresh client certificate is no part of a node's config).

The configs hold the cluster's PKI, so both fingerprints are HMAC-SHA256 keyed by the secrets
bundle: nothing in the record can be checked, let alone guessed, without the bundle itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from ..engine import yamlio
from ..engine.context import RunContext
from ..engine.errors import OneclusterError
from ..engine.fingerprint import STEP_FORMAT
from ..engine.inventory import Node
from ..engine.record import CONVERGE
from . import secretsbundle

STEP_PREFIX = "talos/apply-"
PREFIX = "hmac-sha256:"
# the entry field that holds the config's fingerprint (the inputs' are its "fingerprint")
CONFIG = "config"


def step_id(node: Node) -> str:
    return f"{STEP_PREFIX}{node.name}"


def _key(ctx: RunContext) -> bytes | None:
    bundle = ctx.state.get(secretsbundle.STATE_KEY)
    if not bundle:
        return None
    return hashlib.sha256(b"onecluster talos apply fingerprint\0" + bundle.encode()).digest()


def _keyed(ctx: RunContext, value: object) -> str | None:
    key = _key(ctx)
    if key is None:
        return None
    try:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # not plain data (cannot be told apart reliably)
        return None
    return PREFIX + hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def documents(text: str) -> list | None:
    """A template's or patch's YAML documents (their comments, such as the inventory file a
    patch was generated from, change nothing); None when it is no YAML."""
    try:
        return [d for d in yamlio.load_all(text) if d is not None]
    except (OneclusterError, ValueError):
        return None


def inputs(ctx: RunContext, template: list | None, patch: str) -> str | None:
    """The fingerprint of what makes a node's config: its role template's :func:`documents`
    (parsed once per role) and its own patch's, the Talos release, and onecluster's step
    format. None when either is no YAML."""
    patch_documents = documents(patch)
    if template is None or patch_documents is None:
        return None
    release = ctx.inventory.cluster.talos_version
    return _keyed(ctx, [STEP_FORMAT, "talos-apply", release, template, patch_documents])


def config(ctx: RunContext, documents: list) -> str | None:
    """The fingerprint of a config's parsed documents (the same for the file rendered and the
    config a node returns for it)."""
    return _keyed(ctx, documents)


def recorded(ctx: RunContext, node: Node) -> tuple[str, str] | None:
    """The (inputs, config) fingerprints the run's record holds for ``node``'s apply; None when
    it holds none, or this run re-applies the node regardless (``--force``)."""
    converge = ctx.state.get(CONVERGE)
    if converge is None or converge.forced(step_id(node)) or not _readable(ctx):
        return None
    entry = converge.recorded_entry(step_id(node))
    made, config_print = entry.get("fingerprint"), entry.get(CONFIG)
    if not isinstance(made, str) or not isinstance(config_print, str):
        return None
    return made, config_print


def note(ctx: RunContext, node: Node, made: str | None, documents: list, *, applied: bool) -> None:
    """Keep ``node``'s fingerprints for the record: written with the run's changes when the
    config was ``applied``, else only beside other changes (:meth:`Converge.confirmed`)."""
    converge = ctx.state.get(CONVERGE)
    config_print = config(ctx, documents)
    if converge is None or made is None or config_print is None:
        return
    if applied:
        converge.succeeded(step_id(node), made, **{CONFIG: config_print})
    elif _readable(ctx) and recorded(ctx, node) != (made, config_print):
        converge.confirmed(step_id(node), made, **{CONFIG: config_print})


def _readable(ctx: RunContext) -> bool:
    """Whether the record can be asked: the run has the cluster's kubeconfig (a cluster that
    served none is not asked, and its failed read not counted against the later ones)."""
    return Path(ctx.kubeconfig).is_file()
