"""The Talos secrets bundle: the cluster's PKI and tokens, kept in the secret store only.

``talosctl gen secrets`` runs only when the store holds no bundle; from then on every rebuild reads
the same bundle back, so the PKI never changes by accident. Without ``--new-pki --yes`` a missing
bundle is an error when the cluster runs already, told two ways: the inventory marks it
``bootstrapped``, or a node answers outside maintenance mode (every node is asked first; a node
that cannot tell stops the run too, :mod:`.maintenance`). A new bundle would lock the owner out
of the running cluster. The bundle is stored create-only: when another run stored one while this
one generated its own, this run drops its own and uses that one, so two racing rebuilds end with
one PKI. It exists on disk only for the one talosctl call that reads it, as a 0600 file inside
the run's 0700 work directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import preflight, yamlio
from ..engine.errors import ConfirmationRequired, SecretsError
from ..engine.output import echo, register_secret
from . import maintenance, talosctl
from .options import TalosOptions

if TYPE_CHECKING:
    from ..engine.context import RunContext

SECRET_NAME = "TALOS_SECRETS_BUNDLE"
STATE_KEY = "talos.secrets-bundle"
FILE_NAME = "secrets.yaml"


def check_new_pki(ctx: RunContext) -> None:
    """``--new-pki`` replaces the cluster's PKI: refuse it without ``--yes``."""
    opts = ctx.option(TalosOptions)
    if opts.new_pki and not opts.yes:
        raise ConfirmationRequired(
            "--new-pki generates a new Talos PKI: talosconfigs and kubeconfigs of the running "
            "cluster stop working. Add --yes if that is what you want."
        )


def stored_bundle(ctx: RunContext) -> str | None:
    """The bundle held in the secret store, or None (registered for redaction when found)."""
    value = ctx.secret_store().read([SECRET_NAME]).get(SECRET_NAME)
    if value:
        register_bundle(value)
    return value or None


def register_bundle(bundle: str) -> None:
    """Register the bundle for redaction, and each of its values on its own: a machine config
    carries them one by one (tokens, keys, certificates), never the bundle whole."""
    register_secret(bundle)
    try:
        tree = yamlio.load(bundle)
    except (ValueError, yamlio.YAMLError):
        return
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and len(node) >= 16:  # ids, tokens, keys; not "v1.12.4"
            register_secret(node)


def missing_bundle_problem(ctx: RunContext, *, generate: bool) -> str | None:
    """Why the run cannot proceed without a stored bundle, or None when it can."""
    inv = ctx.inventory
    if not generate:
        return (
            f"the secret store holds no {SECRET_NAME} for cluster {inv.name}: this task needs the "
            "existing PKI. Run `invoke cluster.rebuild` (or `invoke talos.genconfig`) first."
        )
    opts = ctx.option(TalosOptions)
    if inv.cluster.bootstrapped and not (opts.new_pki and opts.yes):
        return (
            f"{inv.source}: cluster.bootstrapped is true but the secret store holds no "
            f"{SECRET_NAME} for cluster {inv.name}. A new bundle would lock you out of the running "
            f"cluster. Restore {SECRET_NAME} in Infisical, or, to start over with a new PKI, run "
            "`invoke talos.genconfig --new-pki --yes`."
        )
    return None


def running_cluster_problem(ctx: RunContext) -> str | None:
    """Why no bundle may be generated because a node is configured already, or None.

    A node that cannot tell raises :class:`.maintenance.ProbeError`: no guess either way.
    """
    inv = ctx.inventory
    configured = [
        f.node for f in maintenance.probe_all(ctx, inv.nodes) if f.mode == maintenance.CONFIGURED
    ]
    if not configured:
        return None
    names = ", ".join(f"{n.name} ({n.ip})" for n in configured)
    return (
        f"the secret store holds no {SECRET_NAME} for cluster {inv.name}, but {names} answer "
        "outside maintenance mode: they run with a PKI made earlier, and a new bundle would lock "
        f"you out of them. Restore {SECRET_NAME} in Infisical (the cluster's tag "
        f"{inv.name!r}); or wipe those nodes back to maintenance mode (`invoke talos.reset --yes`) "
        "to start over; or, to replace the PKI anyway, run "
        "`invoke talos.genconfig --new-pki --yes`."
    )


def ensure_bundle(ctx: RunContext, *, generate: bool) -> str:
    """Load the bundle into ``ctx.state`` (generating and storing it when allowed); return it."""
    check_new_pki(ctx)
    inv = ctx.inventory
    replace = ctx.option(TalosOptions).new_pki
    found = None if replace else stored_bundle(ctx)
    if found is not None:
        echo(f"[talos/secrets-bundle] reusing {SECRET_NAME} from the secret store")
        ctx.state[STATE_KEY] = found
        return found
    # the bundle step starts before the run's preflight answered (it only reads until here):
    # a bundle is generated and stored only once the preflight passed
    preflight.passed(ctx)
    problem = missing_bundle_problem(ctx, generate=generate)
    if problem is None and not replace:
        problem = running_cluster_problem(ctx)
    if problem:
        raise SecretsError(problem)
    path = ctx.workdir / FILE_NAME
    try:
        ctx.run(talosctl.gen_secrets(inv, path), prefix="[talos/secrets-bundle] $ ")
        try:
            bundle = path.read_text()
        except OSError:
            raise SecretsError("talosctl gen secrets wrote no bundle") from None
    finally:
        path.unlink(missing_ok=True)
    register_bundle(bundle)
    store = ctx.secret_store()
    if replace:
        store.write(SECRET_NAME, bundle)
        echo(f"[talos/secrets-bundle] generated a new bundle and replaced {SECRET_NAME}")
    elif (stored := store.create(SECRET_NAME, bundle)) != bundle:
        echo(
            f"[talos/secrets-bundle] another run stored {SECRET_NAME} meanwhile: using that one "
            "(this run's bundle was dropped)"
        )
        bundle = stored
    else:
        echo(f"[talos/secrets-bundle] generated a new bundle and stored it as {SECRET_NAME}")
    ctx.state[STATE_KEY] = bundle
    return bundle


@contextmanager
def bundle_file(ctx: RunContext) -> Iterator[Path]:
    """The bundle as a 0600 file in the private workdir, removed when the block ends."""
    path = ctx.workdir / FILE_NAME
    if ctx.dry_run:
        yield path
        return
    bundle = ctx.state.get(STATE_KEY)
    if bundle is None:
        raise SecretsError("internal: the Talos secrets bundle was not loaded before it was used")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(bundle)
        yield path
    finally:
        path.unlink(missing_ok=True)
