"""The one YAML reader and writer: strict safe loading (libyaml-backed), plain dumps.

Every YAML file onecluster reads — inventory, values files, manifests, chart data, Talos patches —
goes through :func:`read_text` and :func:`load` or :func:`load_all`, so a rule about what input is
accepted lives here:

- a file above :data:`MAX_BYTES`, or one that is not UTF-8, is refused with the file and line;
- a mapping that repeats a key is refused (PyYAML would silently keep the last value);
- more than :data:`MAX_ALIASES` alias uses (``*name`` or ``<<: *name``) in one stream are refused,
  so an alias bomb (each level repeating the one before) is an error, not gigabytes of memory.

Every problem is a :class:`YAMLInputError`: an :class:`~tasks.engine.errors.InputError` (so a task
prints ``error: ...`` with the file and line) that is also a ``yaml.YAMLError`` (so a caller that
collects YAML problems keeps doing so).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import FieldError, InputError

# libyaml's parser where PyYAML was built with it: the reference CRDs alone are 4 MB of YAML
_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# an inventory, values file or manifest is a few KiB; the limit is for files a user hands us
MAX_BYTES = 1024 * 1024
# legitimate YAML uses a handful of anchors; an alias bomb needs few alias uses (nine levels of
# nine ``*name`` are 81) but expands to hundreds of millions of nodes: both are bounded
MAX_ALIASES = 100
MAX_ALIAS_NODES = 100_000  # nodes that aliases add to a document once expanded
_MERGE_TAG = "tag:yaml.org,2002:merge"


YAMLError = yaml.YAMLError


class YAMLInputError(InputError, yaml.YAMLError):
    """A YAML file or text that onecluster does not accept, with where and why."""

    def __init__(self, error: FieldError) -> None:
        super().__init__([error], what=error.file)


class _StrictLoader(_BASE):  # type: ignore[misc, valid-type]
    """The safe loader, refusing duplicate keys and counting alias uses."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.alias_uses = 0

    def _alias_used(self, node: Any) -> None:
        self.alias_uses += 1
        if self.alias_uses > MAX_ALIASES:
            raise ConstructorError(
                None,
                None,
                f"more than {MAX_ALIASES} alias uses (*name): refused as a possible alias bomb; "
                "write the values out instead of repeating anchors",
                node.start_mark,
            )

    def construct_document(self, node: Any) -> Any:
        own: set[int] = set()
        expanded = _expanded_size(node, {}, own)
        if expanded - len(own) > MAX_ALIAS_NODES:
            raise ConstructorError(
                None,
                None,
                f"aliases expand this document by {expanded - len(own)} nodes, above the "
                f"limit of {MAX_ALIAS_NODES}: refused as a possible alias bomb; "
                "write the values out instead of repeating anchors",
                node.start_mark,
            )
        return super().construct_document(node)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # a node reached again is an alias use: each ``*name`` in the text is one such visit
        if node in self.constructed_objects:
            self._alias_used(node)
        return super().construct_object(node, deep=deep)

    def flatten_mapping(self, node: MappingNode) -> None:
        # merges (``<<: *a`` or ``<<: [*a, *b]``) copy node pairs without construct_object
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for each in merged:
                    self._alias_used(each)
        super().flatten_mapping(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:
        if isinstance(node, MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {key_node.value!r} (first at line {seen[key]}); "
                        "keep one of them",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# a plain ``=`` is the string it is in YAML 1.2 (kubectl, helm): YAML 1.1 resolves it to a "value"
# tag PyYAML cannot construct, and AlertmanagerConfig's CRD lists it in an enum
_StrictLoader.add_constructor("tag:yaml.org,2002:value", _BASE.construct_yaml_str)


def _expanded_size(node: Any, sizes: dict[int, int], own: set[int]) -> int:
    """How many nodes ``node`` stands for once every alias is written out (``own``: the distinct
    nodes seen). Each distinct node is sized once, so a bomb is measured without expanding it."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    own.add(key)
    sizes[key] = 1  # a recursive node counts once (the constructor refuses or handles it)
    if isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(c, sizes, own) for c in node.value)
    elif isinstance(node, MappingNode):
        size = 1 + sum(
            _expanded_size(k, sizes, own) + _expanded_size(v, sizes, own) for k, v in node.value
        )
    else:
        size = 1
    sizes[key] = size
    return size


def _problem(exc: Exception, source: str) -> YAMLInputError:
    """A YAML error as one error naming the file and line."""
    if isinstance(exc, YAMLInputError):
        return exc
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark is not None else "(file)"
    problem = getattr(exc, "problem", None) or str(exc)
    fix = ""
    if isinstance(exc, RecursionError):
        problem = "nested too deeply to read"
    elif not isinstance(exc, ConstructorError):  # a scanner or parser error: the text itself
        fix = "fix the YAML syntax at that line (`yamllint` shows it)"
    return YAMLInputError(FieldError(source, where, f"not valid YAML: {problem}", fix))


def load(text: str | bytes, source: str = "<text>") -> Any:
    """One YAML document (``source`` names it in errors)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise _problem(exc, source) from None


def load_all(text: str | bytes, source: str = "<text>") -> list[Any]:
    """Every document of a YAML stream (empty documents as ``None``)."""
    try:
        return list(yaml.load_all(text, Loader=_StrictLoader))
    except (yaml.YAMLError, RecursionError) as exc:
        raise _problem(exc, source) from None


def documents(text: str | bytes, source: str = "<text>") -> list[Any]:
    """Every non-empty document of a YAML stream."""
    return [d for d in load_all(text, source) if d is not None]


def read_text(path: str | os.PathLike[str], shown: str | None = None) -> str:
    """A user's text file (inventory, values file, manifest): at most :data:`MAX_BYTES`, UTF-8.

    ``shown`` is how errors name the file (default: the path). A file that cannot be read
    raises ``OSError`` as ``open`` does; one too large or not UTF-8 a :class:`YAMLInputError`.
    """
    file = Path(path)
    name = shown or str(file)
    with file.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YAMLInputError(
            FieldError(
                name,
                "(file)",
                f"larger than {MAX_BYTES // 1024} KiB, the limit for an input file",
                "split it, or check it is the file you meant",
            )
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YAMLInputError(
            FieldError(
                name,
                f"line {line}",
                f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column}",
                "save the file as UTF-8",
            )
        ) from None


def dump(data: Any) -> str:
    """One document, keys in the order given."""
    return yaml.safe_dump(data, sort_keys=False)


def dump_all(docs: Iterable[Any], *, explicit_start: bool = False) -> str:
    """A multi-document stream, keys in the order given."""
    return yaml.safe_dump_all(list(docs), sort_keys=False, explicit_start=explicit_start)
