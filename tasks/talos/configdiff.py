"""A node's live machine config against the rendered one, every secret field masked.

``cluster.diff`` shows what applying a node's config would change. Both sides hold the
cluster's PKI and tokens, so neither is ever printed as it is: before the diff, every secret
field is replaced on both sides with ``***``, or, where the two sides differ, ``*** (before)``
and ``*** (after)`` (kubectl's own convention for a Secret's data: ``pkg/cmd/diff/diff.go``,
``Masker``), so a changed secret still shows as a changed line and its value never does.

The secret fields (Talos v1.12.4): what ``v1alpha1.Config.Redact`` masks
(``pkg/machinery/config/types/v1alpha1/v1alpha1_provider.go``: ``machine.token``,
``machine.ca.key``, ``cluster.secret``, ``cluster.token``, ``cluster.aescbcEncryptionSecret``,
``cluster.secretboxEncryptionSecret``, ``cluster.serviceAccount.key``, ``cluster.ca.key``,
``cluster.aggregatorCA.key``, ``cluster.etcd.ca.key``), the other documents' ``Redact``
(``RegistryAuthConfig``: ``password``, ``auth``, ``identityToken``; ``RegistryTLSConfig``:
``clientIdentity.key``, ``ca``; ``WireguardConfig``: ``privateKey``, ``peers[].presharedKey``;
``SideroLinkConfig``: the ``jointoken`` of ``apiUrl``), and beyond those, as onecluster's rule,
every certificate (``crt``: the cluster's identity) and the fields of ``v1alpha1_types.go`` that
hold key material Redact leaves (a disk encryption key's ``passphrase``, a platform's
``apiToken``, an inline manifest's ``contents``, which may carry a Secret). The keys are matched
by name anywhere in a document, so a field of the same name elsewhere is masked too: the safe side.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..engine import yamlio

MASK = "***"
BEFORE, AFTER = "*** (before)", "*** (after)"
SECRET_KEYS = frozenset(
    {
        "token", "key", "crt", "ca", "secret", "aescbcEncryptionSecret",
        "secretboxEncryptionSecret", "password", "auth", "identityToken", "privateKey",
        "presharedKey", "passphrase", "apiToken", "contents",
    }
)  # fmt: skip


def _secret(key: Any, value: Any) -> bool:
    if key == "apiUrl":
        return isinstance(value, str) and "jointoken" in value
    # a mapping under a secret key (machine.ca: crt and key) is walked into instead; an absent
    # value is none
    return key in SECRET_KEYS and value is not None and not isinstance(value, dict | list)


def _mask(live: Any, rendered: Any) -> tuple[Any, Any]:
    """Both trees with every secret leaf masked (walked side by side, so a changed secret is
    told apart from an unchanged one)."""
    if isinstance(live, dict) and isinstance(rendered, dict):
        out_live, out_rendered = {}, {}
        for key in [*live, *(k for k in rendered if k not in live)]:
            a, b = live.get(key), rendered.get(key)
            if _secret(key, a) or _secret(key, b):
                same = a == b
                if key in live:
                    out_live[key] = MASK if same else BEFORE
                if key in rendered:
                    out_rendered[key] = MASK if same else AFTER
                continue
            if key in live and key in rendered:
                out_live[key], out_rendered[key] = _mask(a, b)
            elif key in live:
                out_live[key] = _mask(a, None)[0]
            else:
                out_rendered[key] = _mask(None, b)[1]
        return out_live, out_rendered
    if isinstance(live, list) and isinstance(rendered, list):
        pairs = [
            _mask(live[i] if i < len(live) else None, rendered[i] if i < len(rendered) else None)
            for i in range(max(len(live), len(rendered)))
        ]
        return (
            [p[0] for i, p in enumerate(pairs) if i < len(live)],
            [p[1] for i, p in enumerate(pairs) if i < len(rendered)],
        )
    return _alone(live), _alone(rendered)


def _alone(tree: Any) -> Any:
    """One side with no counterpart: every secret leaf masked."""
    if isinstance(tree, dict):
        return {k: (MASK if _secret(k, v) else _alone(v)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_alone(v) for v in tree]
    return tree


def masked(live: list[Any], rendered: list[Any]) -> tuple[list[Any], list[Any]]:
    """The documents of both configs, document by document, every secret field masked."""
    return _mask(list(live), list(rendered))


def config_diff(name: str, live: list[Any], rendered: list[Any]) -> tuple[bool, str]:
    """Whether ``name``'s live config differs from the rendered one, and a unified diff of the
    two with every secret field masked."""
    if live == rendered:
        return False, ""
    left, right = masked(live, rendered)
    text = "".join(
        difflib.unified_diff(
            yamlio.dump_all(left).splitlines(keepends=True),
            yamlio.dump_all(right).splitlines(keepends=True),
            fromfile=f"{name} (live)",
            tofile=f"{name} (rendered)",
        )
    )
    return True, text
