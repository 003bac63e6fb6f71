"""Table-driven checks of the seed's settings, written once for every layer's tests.

A layer's test module keeps its table (what the seed asks for, row by row) and gets its test
from here, so each row is one test case named after the file and key it checks::

    test_setting = settings_test(SETTINGS)                     # (file, dotted key, expected)
    test_manifest_setting = manifest_settings_test(DIR, ROWS)  # (bundle, kind, name, key, expected)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tasks.engine import yamlio
from tasks.engine.inventory import REPO_ROOT
from tests.rendered import find_object, lookup, rendered


def parsed(relative: str) -> Any:
    """A values file or manifest of the repo, placeholders filled, parsed."""
    return yamlio.load(rendered(REPO_ROOT / relative))


def at(data: Any, dotted: str | tuple[str, ...]) -> Any:
    """The value at ``a.b.0.c`` (a digit indexes a list; a tuple for keys holding dots)."""
    for part in dotted.split(".") if isinstance(dotted, str) else dotted:
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _shown(dotted: str | tuple[str, ...]) -> str:
    return dotted if isinstance(dotted, str) else ".".join(dotted)


def settings_test(table: Sequence[tuple[str, Any, Any]]) -> Callable[..., None]:
    """One test per ``(file, dotted key, expected)`` row: the rendered file holds that value."""

    @pytest.mark.parametrize(
        ("relative", "dotted", "expected"),
        table,
        ids=[f"{f}:{_shown(p)}" for f, p, _ in table],
    )
    def test_setting(relative: str, dotted: str | tuple[str, ...], expected: Any) -> None:
        assert at(parsed(relative), dotted) == expected

    return test_setting


def manifest_settings_test(
    directory: Path, table: Sequence[tuple[str, str, str, str, Any]]
) -> Callable[..., None]:
    """One test per ``(bundle, kind, name, key, expected)`` row of a layer's manifests."""

    @pytest.mark.parametrize(
        ("bundle", "kind", "name", "key", "expected"),
        table,
        ids=[f"{b}:{k}/{n}:{p}" for b, k, n, p, _ in table],
    )
    def test_manifest_setting(bundle: str, kind: str, name: str, key: str, expected: Any) -> None:
        assert lookup(find_object(directory / bundle, kind, name), key) == expected

    return test_manifest_setting
