"""One exception hierarchy: every error names what was wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OneclusterError(Exception):
    """Base class of every error onecluster reports to a user."""


@dataclass(frozen=True)
class FieldError:
    """One problem in an input file: where it is, what was expected, and how to fix it."""

    file: str
    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}: {self.field}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class InputError(OneclusterError):
    """Bad input in a file: all problems found, reported together."""

    def __init__(self, errors: Sequence[FieldError], what: str = "input") -> None:
        self.errors = list(errors)
        lines = [f"{len(self.errors)} problem(s) in {what}:"]
        lines += [f"  - {e}" for e in self.errors]
        super().__init__("\n".join(lines))


class InventoryError(InputError):
    """The cluster inventory is invalid."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(errors, what="the cluster inventory")


class GraphError(OneclusterError):
    """The component graph is not a valid DAG (unknown need, cycle, unknown step)."""

    def __init__(self, message: str, ids: Sequence[str] = ()) -> None:
        self.ids = list(ids)
        super().__init__(message)


class ToolMissingError(OneclusterError):
    """A required external binary is not installed, or ``$TOOL`` does not point at it.

    ``override`` is the value of ``$env_var`` when it is set but names no executable: the message
    then says that, not that the variable is unset.
    """

    def __init__(self, tool: str, env_var: str, hint: str, override: str | None = None) -> None:
        self.tool = tool
        if override:
            message = (
                f"${env_var} is set to {override!r}, which is neither an executable file nor a "
                f"command on PATH. Point ${env_var} at the {tool} binary, or unset it to use "
                f"{tool} from PATH (install it: {hint})."
            )
        else:
            message = (
                f"{tool} was not found on PATH (and ${env_var} is not set). Install it: {hint} "
                f"(or point ${env_var} at the binary)."
            )
        super().__init__(message)

    @classmethod
    def several(cls, missing: Sequence[ToolMissingError]) -> ToolMissingError:
        """One error for several missing tools: each one's own message, a line each."""
        error = cls.__new__(cls)
        error.tool = ", ".join(m.tool for m in missing)
        OneclusterError.__init__(
            error, f"{len(missing)} tools are missing:\n" + "\n".join(f"  - {m}" for m in missing)
        )
        return error


class CommandError(OneclusterError):
    """An external command failed; carries its argv, exit code and stderr (already redacted)."""

    def __init__(self, tool: str, argv: Sequence[str], exit_code: int | None, stderr: str) -> None:
        self.tool = tool
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stderr = stderr
        status = "timed out" if exit_code is None else f"exited {exit_code}"
        tail = stderr.strip()
        super().__init__(f"{tool} {status}: {' '.join(argv)}" + (f"\n{tail}" if tail else ""))


class GateError(OneclusterError):
    """A health gate did not pass: what it waited for and what it saw."""


class SecretsError(OneclusterError):
    """Secrets could not be read from, or written to, their store."""


class ConfirmationRequired(OneclusterError):
    """A destructive action was asked for without ``--yes``."""


class FlagError(OneclusterError, ValueError):
    """A flag or option value that is not one the task accepts (a number, a format, a name)."""


def choice(flag: str, value: str, allowed: Sequence[str], what: str = "value") -> str:
    """``value`` if it is one of ``allowed``, else a :class:`FlagError` naming the flag and them."""
    if value not in allowed:
        raise FlagError(f"{flag} {value}: unknown {what}; use one of {', '.join(allowed)}")
    return value
