"""How an onecluster task meets the command line: one decorator, shared flag help, clean errors.

:func:`onecluster_task` is Invoke's ``@task`` with the house rules in one place:

- an :class:`~tasks.engine.errors.OneclusterError` ends the task with ``error: ...`` and exit 1,
  never a traceback (redacted like every other line); an interrupted run exits 128 + the signal;
- Invoke's global ``--dry`` (``-R``) means the task's ``--dry-run``: it never runs anything for real;
- no automatic short flags: Invoke would make ``-d`` mean ``--dry-run`` after a task name while it
  means ``--debug`` before one, so every flag is spelled out;
- flag types come from the defaults (Invoke converts ``--jobs 8`` to an int);
- the shared flags (``--cluster``, ``--dry-run``, ``--jobs``, ``--from``) get their help here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from .catalog import Catalog
from .errors import OneclusterError
from .output import redact

# configuration keys (Invoke's ns.configure): the root's, and each layer collection's own. Invoke
# merges nested collections' configurations at the top level only (a parent's key replaces the
# child's whole value: Collection._task_with_merged_config), so the two must be separate keys.
CONFIG_KEY = "onecluster"
LAYER_KEY = "layer"

# Help of the flags many tasks share: a task taking one gets it unless it says otherwise
HELP = {
    "cluster": "inventory file (default: $ONECLUSTER_CLUSTER or talos/cluster.yaml)",
    "dry_run": "print the exact commands each step would run, and run none",
    "jobs": "how many steps may run at once (default 4)",
    "from_": "resume: start at this step id and run everything after it",
}


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn onecluster errors into a clean message and exit code 1 instead of a traceback.

    Also honours Invoke's global ``--dry`` as the task's own ``dry_run``.
    """
    takes_dry_run = "dry_run" in inspect.signature(func).parameters

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from invoke.exceptions import Exit

        if takes_dry_run and args and _invoke_dry(args[0]):
            kwargs["dry_run"] = True
        try:
            return func(*args, **kwargs)
        except OneclusterError as exc:
            code = getattr(exc, "exit_code", 1)  # an interrupted run: 130 or 143
            raise Exit(redact(f"error: {exc}"), code=code) from None

    return wrapper


def _invoke_dry(context: Any) -> bool:
    """Whether Invoke was started with ``--dry`` (it sets ``run.dry`` in the config)."""
    config = getattr(context, "config", None)
    try:
        return bool(config.run.dry) if config is not None else False
    except AttributeError:
        return False


def _configured(c: Any, key: str) -> Any:
    config = getattr(c, "config", None)
    return config.get(key, {}) if config is not None else {}


def layer_settings(c: Any) -> Any:
    """What the task's layer collection configured (its layer, ...); empty outside one."""
    return _configured(c, LAYER_KEY)


def catalog_of(c: Any) -> Catalog:
    """The catalogue the root namespace hands every task (``tasks/__init__.py``)."""
    found = _configured(c, CONFIG_KEY).get("catalog")
    if not isinstance(found, Catalog):
        raise OneclusterError(
            "internal: this task needs the stack's catalogue in its configuration "
            f"({CONFIG_KEY}.catalog, set by tasks/__init__.py); call it through `invoke`"
        )
    return found


def onecluster_task(
    *,
    help: dict[str, str] | None = None,
    iterable: Sequence[str] = (),
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """Invoke's ``@task`` for onecluster: clean errors, ``--dry`` honoured, no short flags."""

    def decorate(func: Callable[..., Any]) -> Any:
        from invoke import task

        params = inspect.signature(func).parameters
        options: dict[str, Any] = {
            "help": {**{n: text for n, text in HELP.items() if n in params}, **(help or {})},
            "iterable": list(iterable),
            "auto_shortflags": False,
        }
        if name:
            options["name"] = name
        return task(**options)(user_errors(func))

    return decorate
