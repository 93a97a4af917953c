"""What every command shares: the options (``--db``, ``--format``, ``--store``...),
runlog's errors as one-line click errors with their exit code, rendering rows, the
read-only index, and the progress bar.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

import click

from ..errors import RunlogError
from ..output import FORMATS, one_line, render
from ..store import DEFAULT_STORE, LAYOUTS


def default_db() -> str:
    return os.environ.get("RUNLOG_DB") or "runlog.db"


def db_option(func):
    """``--db``: the SQLite index (default ``$RUNLOG_DB``, else ``./runlog.db``)."""
    return click.option(
        "--db",
        "db_path",
        default=default_db,
        show_default="$RUNLOG_DB or runlog.db",
        type=click.Path(dir_okay=False),
        help="SQLite index file.",
    )(func)


def format_option(func):
    """``--format``: table, json, csv or nl, the same on every command that prints rows."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format (json renders NaN/Infinity as strings).",
    )(func)


def store_option(func):
    func = click.option(
        "--layout",
        type=click.Choice(LAYOUTS),
        default=lambda: os.environ.get("RUNLOG_LAYOUT", "file-system"),
        show_default="$RUNLOG_LAYOUT or file-system",
        help="Layout for new runs (existing runs keep theirs).",
    )(func)
    return click.option(
        "--store",
        default=lambda: os.environ.get("RUNLOG_STORE", DEFAULT_STORE),
        show_default=f"$RUNLOG_STORE or {DEFAULT_STORE}",
        help="Run-log store folder, or URL (s3://bucket/prefix, any installed fsspec protocol).",
    )(func)


def endpoint_option(func):
    """``--endpoint-url``: an S3-compatible server (MinIO...) for s3:// URLs."""
    return click.option(
        "--endpoint-url",
        default=None,
        show_default="$AWS_ENDPOINT_URL",
        help="S3-compatible server for s3:// URLs, e.g. http://127.0.0.1:9000 (MinIO).",
    )(func)


def click_error(exc: RunlogError) -> click.ClickException:
    """runlog's error as a one-line click error with the exit code it asks for (1 or 2)."""
    error = click.ClickException(one_line(str(exc)))
    error.exit_code = exc.exit_code
    return error


def friendly_errors(func):
    """Turn runlog's own errors into one-line click errors, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RunlogError as exc:
            raise click_error(exc) from None

    return wrapper


def echo_rows(rows, fmt: str, columns=None) -> None:
    click.echo(render(rows, fmt, columns))


@contextlib.contextmanager
def read_index(db_path):
    """The index opened read-only for the length of a command."""
    from ..index import open_db

    db = open_db(db_path, readonly=True)
    try:
        yield db
    finally:
        db.close()


class ProgressBar:
    """A progress callback for the library, on stderr; off with --quiet and when stderr
    is not a terminal. A bar when the total is known from the first step; otherwise a
    count that shows the total once it is known (a bucket is ingested while it is
    still being listed). Use as a context manager."""

    REDRAW_SECONDS = 0.2

    def __init__(self, label: str, quiet: bool, file=None):
        self.file = file if file is not None else sys.stderr
        self.label = label
        self.show = not quiet and self.file.isatty()
        self.bar = None
        self.done = 0
        self.total: int | None = None
        self.started = self.drawn = 0.0
        self.width = 0

    def step(self, total: int | None) -> None:
        if not self.show:
            return
        self.done += 1
        if self.done == 1 and total is not None:
            self.bar = click.progressbar(length=total, label=self.label, file=self.file)
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if self.done == 1:
            self.started = now
        self.total = total
        if now - self.drawn >= self.REDRAW_SECONDS:
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        text = f"{self.label}: {self.done:,}" + (f" of {self.total:,}" if self.total is not None else " (listing...)")
        if now > self.started:
            text += f", {self.done / (now - self.started):,.0f}/s"
        self.file.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.file.flush()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.render_finish()
        elif self.done:
            self._draw(time.monotonic())
            self.file.write("\n")
