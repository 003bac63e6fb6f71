"""Helm values, merged the two ways Helm merges them.

Helm has two operations, and they treat ``null`` differently:

- :func:`merge_values` is what ``helm -f a.yaml -f b.yaml`` does with several values files before
  anything else (``mergeMaps`` in helm's ``pkg/cli/values/options.go``): maps merge key by key, any
  other value (a list too) replaces, and a ``null`` *stays*, so that the next step removes the key.
- :func:`coalesce` is what Helm then does with the chart's defaults (``coalesceValues`` in
  ``pkg/chart/common/util/coalesce.go``): the user's values over the defaults, where a ``null``
  *deletes* the key.

``coalesce(defaults, merge_values(a, b))`` is therefore what a chart sees for ``-f a -f b``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merge_values(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base`` as Helm merges values files: ``null`` is kept (it deletes later)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def coalesce(defaults: Any, values: Any) -> Any:
    """``values`` over a chart's ``defaults`` as Helm coalesces them: ``null`` deletes the key."""
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return copy.deepcopy(values)
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif key in out:
            out[key] = coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
