"""All user-facing output, with redaction of every registered secret value in one place.

Every value read from a secret store is passed to :func:`register_secret` the moment it exists in
memory; from then on :func:`redact` replaces it with ``***`` in progress lines, dry-run commands,
log records and error messages. A logging filter applies the same to the ``logging`` module and the
``sh`` library's loggers, which otherwise put whole argv lists into their records.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable, Sequence

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values ("1", "yes") would mask ordinary words everywhere

_lock = threading.Lock()
_secrets: set[str] = set()
_out_lock = threading.Lock()


def register_secret(value: str | bytes | None) -> None:
    """Remember a secret value so no output path can print it."""
    if value is None:
        return
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    with _lock:
        for candidate in {text, text.strip()}:
            if len(candidate) >= _MIN_SECRET_LEN:
                _secrets.add(candidate)
        for line in text.splitlines():
            # multi-line values (PEM keys, kubeconfigs) must not leak line by line either
            if len(line.strip()) >= 16:
                _secrets.add(line.strip())


def forget_secrets() -> None:
    """Drop every registered value (tests use this between cases)."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret value replaced by ``***``."""
    if not text:
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def clipped(text: str, limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters (``...`` marks a cut).

    Always in this order: a cut first could split a secret (or its base64 form) so that no
    registered value matches the piece left, and that piece would print in clear.
    """
    text = redact(text)
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Redact each argument of a command line."""
    return [redact(a) for a in argv]


def echo(message: str = "", *, err: bool = False) -> None:
    """Print one redacted line (thread-safe, so parallel steps never interleave mid-line)."""
    stream = sys.stderr if err else sys.stdout
    with _out_lock:
        try:
            print(redact(message), file=stream, flush=True)
        except BrokenPipeError:  # piped into `head` and closed: stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            raise SystemExit(141) from None


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Render a plain-text table with left-aligned columns."""
    data = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in data:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in data]
    return "\n".join([line, rule, *body])


_base_factory = logging.getLogRecordFactory()


def _redacting_record_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    """Build every log record already redacted, whichever logger or handler it reaches."""
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a record whose args do not fit its format: leave it to logging
        return record
    record.msg = redact(message)
    record.args = None
    return record


def install_log_redaction() -> None:
    """Redact every log record at creation; sh logs full argv at INFO, so quiet it too."""
    if logging.getLogRecordFactory() is not _redacting_record_factory:
        logging.setLogRecordFactory(_redacting_record_factory)
    logging.getLogger("sh").setLevel(logging.WARNING)


install_log_redaction()
