"""How an onecluster task meets the command line: one decorator, shared flag help, clean errors.

:func:`onecluster_task` is Invoke's ``@task`` with the house rules in one place:

- an :class:`~tasks.engine.errors.OneclusterError` ends the task with ``error: ...`` and exit 1,
  never a traceback (redacted like every other line); an interrupted run exits 128 + the signal;
- Invoke's global ``--dry`` (``-R``) means the task's ``--dry-run``: it never runs anything for real;
- no automatic short flags: Invoke would make ``-d`` mean ``--dry-run`` after a task name while it
  means ``--debug`` before one, so every flag is spelled out;
- flag types come from the defaults (Invoke converts ``--jobs 8`` to an int), and a value that
  does not convert (``--jobs abc``) is ``error: ...`` at parse time, not Invoke's traceback;
- a flag that takes a value, given without one, is an error naming it: Invoke's repeatable
  (``iterable``) flags would otherwise take a bare ``--name`` as "no names", i.e. everything;
- every value is checked before the task body runs: the shared flags here (``--jobs`` a whole
  number from 1 to :data:`MAX_JOBS`, no flag an empty string), a task's own through ``checks``
  (:func:`one_of` for a format, :func:`duration` for a timeout, :func:`new_directory` and
  :func:`file_to_write` for paths a task writes); names (``--layer``, ``--node``, ``--name``)
  are checked against the inventory by the code that resolves them, before any step runs;
- the shared flags (``--cluster``, ``--dry-run``, ``--jobs``, ``--from``) get their help here, and
  a repeatable flag's help starts with its value placeholder (``LAYER, repeatable: ...``), which
  Invoke's help shows for no list flag.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from invoke import Argument, Task
from invoke.exceptions import ParseError

from .catalog import Catalog
from .errors import FlagError, OneclusterError, choice
from .output import redact
from .poll import parse_duration

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
    "from_": "only the steps from this step id on, in plan order",
    "force": "re-apply every step, even those the cluster's record shows unchanged",
    "force_step": "re-apply this step even if unchanged",
}

MAX_JOBS = 64  # far above what six nodes gain from; a typo (--jobs 4000) is an error

# the value placeholder of a flag in messages and in a repeatable flag's help (default: its name)
PLACEHOLDERS = {
    "cluster": "PATH",
    "jobs": "N",
    "from_": "STEP",
    "step": "STEP",
    "force_step": "STEP",
    "component": "ID",
    "timeout": "DURATION",
    "output": "PATH",
    "out": "DIR",
    "cache": "DIR",
    "reference": "DIR",
}

Check = Callable[[str, Any], object]  # (flag as typed, value) -> raises FlagError when bad


def flag_name(param: str) -> str:
    """``from_`` → ``--from``, ``dry_run`` → ``--dry-run``: the flag as a user types it."""
    return "--" + param.rstrip("_").replace("_", "-")


def placeholder(param: str) -> str:
    return PLACEHOLDERS.get(param, param.rstrip("_").upper())


def one_of(*allowed: str, what: str = "value") -> Check:
    """A check: the value is one of ``allowed`` (a format, a profile)."""
    return lambda flag, value: choice(flag, value, allowed, what)


def duration(flag: str, value: Any) -> object:
    """A check: the value is a duration (``30s``, ``10m``, ``1h``) longer than nothing."""
    seconds = parse_duration(value, flag)
    if seconds <= 0:
        raise FlagError(f"{flag} {value}: a wait of no time always fails; give e.g. 30s or 10m")
    return seconds


def jobs(flag: str, value: Any) -> object:
    """A check: a whole number of parallel steps, from 1 to :data:`MAX_JOBS`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOBS:
        raise FlagError(f"{flag} {value}: expected a whole number from 1 to {MAX_JOBS}, e.g. 4")
    return value


def _blocked_by_a_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path``) that is not a directory, if any."""
    for each in (path, *path.parents):
        if each.exists():
            return None if each.is_dir() else each
    return None


def new_directory(flag: str, value: Any) -> object:
    """A check: the value is a directory, or one that can be made (no file in its way)."""
    blocker = _blocked_by_a_file(Path(value))
    if blocker is not None:
        raise FlagError(f"{flag} {value}: {blocker} is a file, not a directory; give a directory")
    return value


def file_to_write(flag: str, value: Any) -> object:
    """A check: the value can be written as a file (not a directory, no file in its way)."""
    path = Path(value)
    if path.is_dir():
        raise FlagError(f"{flag} {value}: is a directory; give the path of a file")
    blocker = _blocked_by_a_file(path.parent)
    if blocker is not None:
        raise FlagError(f"{flag} {value}: {blocker} is a file, not a directory")
    return value


# the checks of the flags many tasks share
CHECKS: dict[str, Check] = {"jobs": jobs}


def check_flags(values: Mapping[str, Any], checks: Mapping[str, Check]) -> None:
    """Raise a :class:`FlagError` for the first flag value that is not one the task accepts."""
    for param, value in values.items():
        flag = flag_name(param)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str) and not item.strip():
                raise FlagError(
                    f"{flag} was given an empty value; give one ({flag} {placeholder(param)}) "
                    "or leave the flag out"
                )
        if param in checks and value is not None:
            checks[param](flag, value)


class Flag(Argument):
    """Invoke's argument, made strict: a value that does not convert, or none given, is an error.

    Invoke starts a list (repeatable) flag at ``[]`` and never notices it was given bare, so
    ``apps.deploy --name`` would deploy every app; and it ends ``--jobs abc`` in a traceback of
    ``int('abc')``. Here a list flag starts unset and value-optional, so Invoke hands a bare one
    ``True``; and so does every other value flag in the copies Invoke's parser makes of its
    arguments (``ParseMachine`` deep-copies its contexts, ``invoke/parser/parser.py``, 3.0), while
    the originals, which ``--help`` prints, keep ``--cluster=STRING``. :meth:`set_value` turns
    that ``True``, or a failed conversion, into an ``error: ...`` Invoke prints before any task
    starts (exit 1).

    Not caught: a repeatable flag given bare *after* a value (``--layer a --layer``), which keeps
    ``[a]``: Invoke's parser tells its arguments nothing when a flag is seen again.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.kind is list:
            self.raw_value = None
            self.optional = True

    def __deepcopy__(self, memo: dict[int, Any]) -> Flag:
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        if clone.takes_value:
            clone.optional = True
        return clone

    def set_value(self, value: Any, cast: bool = True) -> None:
        param = self.attr_name or self.name or ""
        flag = flag_name(param)
        if value is True and not cast and self.takes_value:
            more = " (repeat the flag for more)" if self.kind is list else ""
            raise ParseError(f"error: {flag} needs a value: {flag} {placeholder(param)}{more}")
        if cast and self.kind is int:
            try:
                int(value)
            except ValueError:
                raise ParseError(
                    f"error: {flag} {value}: expected a whole number, e.g. {flag} {self.default}"
                ) from None
        super().set_value(value, cast=cast)


class OneclusterTask(Task):
    """Invoke's task whose flags are :class:`Flag` s.

    Invoke's ``get_arguments`` pops each flag's help out of ``task.help`` as it builds the
    arguments, so a second program in one process (the tests) would print none; here it works on
    a copy.
    """

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        texts = dict(self.help)
        try:
            built = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = texts
        return [
            Flag(
                names=a.names,
                kind=a.kind,
                default=a.default,
                help=a.help,
                positional=a.positional,
                optional=a.optional,
                incrementable=a.incrementable,
                attr_name=a.attr_name,
            )
            for a in built
        ]


def user_errors(
    func: Callable[..., Any], checks: Mapping[str, Check] | None = None
) -> Callable[..., Any]:
    """Turn onecluster errors into a clean message and exit code 1 instead of a traceback.

    Every flag value given is checked first (``checks``: the task's own, over :data:`CHECKS`).
    Also honours Invoke's global ``--dry`` as the task's own ``dry_run``.
    """
    signature = inspect.signature(func)
    takes_dry_run = "dry_run" in signature.parameters
    all_checks = {**CHECKS, **(checks or {})}

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from invoke.exceptions import Exit

        if takes_dry_run and args and _invoke_dry(args[0]):
            kwargs["dry_run"] = True
        try:
            with _sigterm_as_interrupt():
                check_flags(kwargs, all_checks)
                return func(*args, **kwargs)
        except OneclusterError as exc:
            code = getattr(exc, "exit_code", 1)  # an interrupted run: 130 or 143
            raise Exit(redact(f"error: {exc}"), code=code) from None
        except KeyboardInterrupt as exc:  # outside a run (its own handlers report a run's)
            sig = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            raise Exit(
                f"error: interrupted by {sig.name}: the running tool was ended, nothing more "
                "was started",
                code=128 + sig,
            ) from None

    return wrapper


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a run: raised where the task is, as Ctrl-C raises KeyboardInterrupt.

    So a task that calls a tool outside the engine's run (``apps.status``, ``apps.remove``) ends
    that tool's process group (the executor does on any interrupt) and removes its work directory
    on SIGTERM as on Ctrl-C, instead of dying with the tool left running. A run installs its own
    handlers over this one (:func:`tasks.engine.signals.handle_signals`).
    """


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    checks: Mapping[str, Check] | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """Invoke's ``@task`` for onecluster: clean errors, ``--dry`` honoured, no short flags.

    ``iterable`` names the repeatable flags; ``checks`` maps a flag's parameter to its check.
    """

    def decorate(func: Callable[..., Any]) -> Any:
        from invoke import task

        params = inspect.signature(func).parameters
        texts = {**{n: text for n, text in HELP.items() if n in params}, **(help or {})}
        for param in iterable:
            texts[param] = f"{placeholder(param)}, repeatable: {texts.get(param, '')}".rstrip()
        options: dict[str, Any] = {
            "help": texts,
            "iterable": list(iterable),
            "auto_shortflags": False,
            "klass": OneclusterTask,
        }
        if name:
            options["name"] = name
        return task(**options)(user_errors(func, checks))

    return decorate
