"""A small typed loader: YAML mappings into frozen dataclasses, collecting every error.

Dataclass fields are named in snake_case; their YAML keys are the camelCase form (or
``field(metadata={"key": ...})``). A field with no default is required. Supported annotations:
``str``, ``int``, ``bool``, ``IPv4Address``, ``IPv4Network``, ``Literal[...]``, nested dataclasses,
``list[T]``, ``tuple[T, ...]`` and ``dict[str, T]``, and ``T | None``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

from .errors import FieldError

_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    ipaddress.IPv4Address: "an IPv4 address such as 192.168.1.10",
    ipaddress.IPv4Network: "an IPv4 network in CIDR form such as 192.168.1.0/24",
}


def yaml_key(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a dataclass field: its metadata ``key`` or its name in camelCase."""
    if "key" in f.metadata:
        return f.metadata["key"]
    head, *rest = f.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def describe(tp: Any) -> str:
    """A human description of the type a field expects."""
    origin = get_origin(tp)
    if tp in _NAMES:
        return _NAMES[tp]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"a list of {describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of names to {describe(get_args(tp)[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        keys = ", ".join(yaml_key(f) for f in dataclasses.fields(tp) if f.init)
        return f"a mapping with keys {keys}"
    return getattr(tp, "__name__", str(tp))


class Loader:
    """Converts plain YAML data to typed objects, recording errors instead of stopping."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str, fix: str = "") -> None:
        self.errors.append(FieldError(self.file, path or "(top level)", message, fix))

    def load(self, tp: Any, data: Any, path: str = "") -> Any:
        """Return ``data`` converted to ``tp``, or ``None`` after recording why it can't be."""
        origin = get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in get_args(tp) if a is not type(None)]
            if data is None:
                return None
            return self.load(inner[0], data, path)
        if dataclasses.is_dataclass(tp):
            return self._load_dataclass(tp, data, path)
        if origin in (list, tuple):
            if not isinstance(data, list):
                return self._wrong(tp, data, path)
            item = get_args(tp)[0]
            items = [self.load(item, v, f"{path}[{i}]") for i, v in enumerate(data)]
            return tuple(items) if origin is tuple else items
        if origin is dict:
            if not isinstance(data, dict):
                return self._wrong(tp, data, path)
            value_tp = get_args(tp)[1]
            return {str(k): self.load(value_tp, v, f"{path}.{k}") for k, v in data.items()}
        if origin is Literal:
            if data not in get_args(tp):
                return self._wrong(tp, data, path)
            return data
        if tp is bool:
            return data if isinstance(data, bool) else self._wrong(tp, data, path)
        if tp is int:
            if isinstance(data, bool) or not isinstance(data, int):
                return self._wrong(tp, data, path)
            return data
        if tp is str:
            # YAML turns unquoted 1.10 into a float and yes into a bool: insist on a real string
            if not isinstance(data, str):
                return self._wrong(tp, data, path, fix="quote the value in the YAML file")
            return data
        if tp in (ipaddress.IPv4Address, ipaddress.IPv4Network):
            if not isinstance(data, str):
                return self._wrong(tp, data, path)
            try:
                return tp(data)
            except ValueError:
                return self._wrong(tp, data, path)
        raise TypeError(f"schema: unsupported annotation {tp!r} at {path}")

    def _wrong(self, tp: Any, data: Any, path: str, fix: str = "") -> None:
        self.error(path, f"expected {describe(tp)}, got {data!r}", fix)
        return None

    def _load_dataclass(self, tp: Any, data: Any, path: str) -> Any:
        if data is None and not path:
            self.error(
                path,
                f"the file is empty (expected {describe(tp)})",
                "write the mapping into it, e.g. starting from a copy of the reference file",
            )
            return None
        if not isinstance(data, dict):
            return self._wrong(tp, data, path)
        hints = get_type_hints(tp)
        fields = {yaml_key(f): f for f in dataclasses.fields(tp) if f.init}
        for key in data:
            if key not in fields:
                known = ", ".join(sorted(fields))
                self.error(
                    _join(path, str(key)),
                    "unknown key",
                    f"remove it or use one of: {known}",
                )
        values: dict[str, Any] = {}
        for key, f in fields.items():
            sub = _join(path, key)
            if key in data:
                values[f.name] = self.load(hints[f.name], data[key], sub)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.error(
                    sub,
                    f"missing required key (expected {describe(hints[f.name])})",
                    f"add `{key}:` to the file",
                )
                values[f.name] = None
        try:
            return tp(**values)
        except (TypeError, ValueError):  # partially loaded after errors: the errors say why
            return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def load_typed(tp: type, data: Any, file: str) -> tuple[Any, list[FieldError]]:
    """Load ``data`` as ``tp``; return the object (maybe partial) and every error found."""
    loader = Loader(file)
    obj = loader.load(tp, data)
    return obj, loader.errors
