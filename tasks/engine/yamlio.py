"""The one YAML reader and writer: safe loading (libyaml-backed where PyYAML has it), plain dumps.

Every YAML file onecluster reads — inventory, values files, manifests, chart data, Talos patches —
goes through :func:`load` or :func:`load_all`, so a rule about what input is accepted lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

# libyaml's loader where PyYAML was built with it: the reference CRDs alone are 4 MB of YAML
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, reading a plain ``=`` as the string it is in YAML 1.2 (kubectl, helm).

    YAML 1.1 resolves ``=`` to a "value" tag PyYAML cannot construct; AlertmanagerConfig's CRD
    lists it in an enum.
    """


_Loader.add_constructor("tag:yaml.org,2002:value", _LOADER.construct_yaml_str)
_LOADER = _Loader

YAMLError = yaml.YAMLError


def load(text: str | bytes) -> Any:
    """One YAML document."""
    return yaml.load(text, Loader=_LOADER)


def load_all(text: str | bytes) -> list[Any]:
    """Every document of a YAML stream (empty documents as ``None``)."""
    return list(yaml.load_all(text, Loader=_LOADER))


def documents(text: str | bytes) -> list[Any]:
    """Every non-empty document of a YAML stream."""
    return [d for d in load_all(text) if d is not None]


def dump(data: Any) -> str:
    """One document, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False)


def dump_all(docs: Iterable[Any], *, explicit_start: bool = False) -> str:
    """A multi-document stream, keys in the order given."""
    return yaml.safe_dump_all(list(docs), sort_keys=False, explicit_start=explicit_start)
