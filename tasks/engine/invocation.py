"""The command line this run was started with, as a user would type it again.

Used twice: a run's lock names the command holding it, and an interrupted or failed run prints
it as the command that continues it (a re-run skips what succeeded unchanged).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

# how the program may appear in argv[0]: the `invoke` script, `inv`, or `python -m invoke`
_INVOKE_NAMES = {"invoke", "inv", "__main__.py"}


def _argv(argv: Sequence[str] | None) -> list[str]:
    args = list(sys.argv if argv is None else argv)
    if not args:
        return ["invoke"]
    name = Path(args[0]).name
    return ["invoke" if name in _INVOKE_NAMES else name, *args[1:]]


def command_line(argv: Sequence[str] | None = None) -> str:
    """This process's command line, shell-quoted, with the program shown as ``invoke``."""
    return shlex.join(_argv(argv))
