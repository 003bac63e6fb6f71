"""The run's preflight: every selected step's problems (a wrong client, a secret missing from the
store), asked before anything is changed.

A dry-run, and a run none of whose steps may start before it, ask it first (a dry-run prints it
in order). Otherwise a run asks it beside its first steps: the ones that declare
``before_preflight`` (they only read, or write only into the run's private workdir:
``talos/secrets-bundle`` reading the store, ``talos/genconfig`` rendering the configs) start at
once, and every other step, early converge checks and gates included, waits for its answer. So
the client's version probe costs a re-run no round trip of its own, and a failed preflight still
means nothing was changed: a step that would write anything else before the answer (a bundle
generated into the store, configs exported with ``--out``) waits for it with :func:`passed`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .components import Component
from .context import RunContext
from .errors import OneclusterError

STATE_KEY = "preflight"


class Preflight:
    """One run's preflight: asked now (:meth:`ask`) or in the background (:meth:`start`)."""

    def __init__(self, ctx: RunContext, steps: Sequence[Component]) -> None:
        self.ctx = ctx
        self.steps = list(steps)
        self._answered = threading.Event()
        self._error: BaseException | None = None
        ctx.state[STATE_KEY] = self

    def _ask(self) -> None:
        try:
            problems = [p for s in self.steps for p in s.preflight(self.ctx)]
            if problems:
                self._error = OneclusterError(
                    "preflight failed, nothing was changed:\n"
                    + "\n".join(f"  - {p}" for p in problems)
                )
        except BaseException as exc:  # raised where the run waits for the answer
            self._error = exc
        finally:
            self._answered.set()

    def ask(self) -> None:
        """Ask every step now; raise the first problem found (as one error listing them all)."""
        self._ask()
        self.check()

    def start(self) -> None:
        """Ask in the background; :meth:`state` and :meth:`check` give the answer."""
        threading.Thread(target=self._ask, name="preflight", daemon=True).start()

    def state(self) -> bool | None:
        """True: passed; False: failed (:meth:`check` raises why); None: not answered yet."""
        if not self._answered.is_set():
            return None
        return self._error is None

    def check(self) -> None:
        """Wait for the answer; raise the failure (the step's own error, or the problem list)."""
        self._answered.wait()
        if self._error is not None:
            raise self._error


def passed(ctx: RunContext) -> None:
    """Before a ``before_preflight`` step writes anything outside the run's workdir: wait for
    the run's preflight, and raise its failure (nothing to wait for outside a run)."""
    found: Any = ctx.state.get(STATE_KEY)
    if found is not None:
        found.check()
