"""Fill ``((placeholders))`` in values files and manifests from the inventory.

Values files and manifests stay plain YAML that upstream tools can read; the few values that differ
between clusters (addresses, host names, bucket names) are written ``((network.staticIPs.dispatcharr))``
and filled from the inventory at render time. The syntax avoids ``${...}`` (used by apps' own config
files) and ``{{ ... }}`` (Helm's ``tpl``). A template the project fills per declaration (e.g. a
database of an app) is given its own ``values`` beside the inventory's, such as
``((database.name))``. An unknown placeholder is an error naming file and line. Secrets are never
placeholders: they reach the cluster as Secrets, referenced by name.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import yamlio
from .errors import FieldError, InputError
from .inventory import REPO_ROOT, Inventory
from .schema import yaml_key

PLACEHOLDER = re.compile(r"\(\(\s*([A-Za-z0-9_.-]+)\s*\)\)")
_RENDERED_LOCK = threading.Lock()


# inventory_values by inventory (kept with the inventory itself, so its id is not reused): a run
# renders some sixty files with one inventory, and walking it is most of a small file's render
_VALUES: dict[int, tuple[Inventory, dict[str, str]]] = {}
_VALUES_KEPT = 16


def inventory_values(inv: Inventory) -> dict[str, str]:
    """Every scalar of the inventory under its dotted YAML path (``nodes.talostrk1.ip`` too)."""
    with _RENDERED_LOCK:
        found = _VALUES.get(id(inv))
    if found is not None and found[0] is inv:
        return dict(found[1])
    out = _walk_values(inv)
    with _RENDERED_LOCK:
        if len(_VALUES) >= _VALUES_KEPT:
            _VALUES.clear()
        _VALUES[id(inv)] = (inv, out)
    return dict(out)


def _walk_values(inv: Inventory) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                if f.init:
                    walk(
                        f"{prefix}.{yaml_key(f)}" if prefix else yaml_key(f), getattr(value, f.name)
                    )
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, list | tuple):
            for item in value:
                key = getattr(item, "name", None)
                if key is not None:
                    walk(f"{prefix}.{key}", item)
        elif value is not None:
            out[prefix] = str(value).lower() if isinstance(value, bool) else str(value)

    walk("", inv)
    pool = inv.network.pool
    out["network.loadBalancerPool.first"] = str(pool.first)
    out["network.loadBalancerPool.last"] = str(pool.last)
    return out


def render_text(
    text: str,
    inv: Inventory,
    source: str = "<text>",
    values: Mapping[str, str] | None = None,
) -> str:
    """Replace every ``((path))`` in ``text``; raise naming each unknown placeholder.

    ``values`` are filled beside the inventory's (a template's own, e.g. ``database.name``); a key
    that is an inventory path too is refused, so a template cannot shadow the inventory.
    """
    known = inventory_values(inv)
    extra = dict(values or {})
    shadowed = sorted(set(extra) & set(known))
    if shadowed:
        raise ValueError(f"{source}: values {shadowed} are inventory paths already")
    known.update(extra)
    hint = "use a path that exists in the inventory, e.g. ((cluster.name))"
    if extra:
        hint += ", or one of this file's own: " + ", ".join(f"(({k}))" for k in sorted(extra))
    errors: list[FieldError] = []

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in known:
            return known[key]
        line = text.count("\n", 0, match.start()) + 1
        errors.append(
            FieldError(
                source,
                f"line {line}",
                f"unknown placeholder (({key}))",
                hint,
            )
        )
        return match.group(0)

    rendered = PLACEHOLDER.sub(fill, text)
    if errors:
        raise InputError(errors, what=source)
    return rendered


# what render_file made, by file (path and content), inventory and own values: a run renders
# each file for its fingerprint, its check and its command, and the text is the same each time
_RENDERED: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], str] = {}


def render_file(path: Path, inv: Inventory, values: Mapping[str, str] | None = None) -> str:
    """Render one values file, manifest or template (``values``: its own, beside the inventory's).

    The file is read as every input file is (:func:`yamlio.read_text`: size limit, UTF-8), and a
    YAML one is parsed once rendered, so a duplicate key or an alias bomb is an error naming this
    file and line rather than a problem of some text further on. The same content rendered before
    with the same inventory and values is not parsed again.
    """
    try:
        shown = str(path.relative_to(REPO_ROOT))
    except ValueError:
        shown = str(path)
    try:
        text = yamlio.read_text(path, shown)
    except OSError as exc:
        raise InputError(
            [FieldError(shown, "(file)", f"cannot read: {exc.strerror}")], what=shown
        ) from None
    key = (str(path), text, repr(inv), tuple(sorted((values or {}).items())))
    with _RENDERED_LOCK:
        if key in _RENDERED:
            return _RENDERED[key]
    rendered = render_text(text, inv, shown, values)
    if path.suffix in (".yaml", ".yml"):
        yamlio.load_all(rendered, shown)
    with _RENDERED_LOCK:
        _RENDERED[key] = rendered
    return rendered
