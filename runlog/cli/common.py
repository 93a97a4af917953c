"""What every command shares: the options (``--db``, ``--format``, ``--store``...),
runlog's errors as one-line click errors with their exit code, rendering rows, the
read-only index, and the progress bar.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import click

from ..errors import RunlogError
from ..store import DEFAULT_STORE, LAYOUTS
from ..values import one_line
from .render import FORMATS, render


def default_db() -> str:
    from ..api import default_path

    return default_path()


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
    """``--format`` (table, json, csv, tsv or nl, the same on every command that prints
    rows) and ``--no-headers``."""
    func = click.option("--no-headers", "no_headers", is_flag=True,
                        help="Leave out the header line (table, csv, tsv).")(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format: table to read (UTC times, 7 significant digits); json, csv, tsv or nl "
             "(one JSON object a line) for scripts, with every digit.",
    )(func)


def list_options(func):
    """``--sort COLUMN`` (``-COLUMN`` descending, repeatable) and ``--limit N`` for a command
    whose rows are sorted after the fact (see :func:`sort_rows`)."""
    func = click.option("--limit", type=click.IntRange(0), metavar="N", help="Print at most N rows.")(func)
    return click.option("--sort", "sort", multiple=True, metavar="[-]COLUMN",
                        help="Sort by this column (-COLUMN: descending; repeatable for ties; numbers before text, "
                             "blanks last).")(func)


def sort_rows(rows: list[dict], columns: list[str], sort: tuple[str, ...], limit: int | None) -> list[dict]:
    """Rows sorted by output columns (stable; numbers before text and blanks last, whichever
    the direction; each kind among its own), then cut.

    >>> rows = [{"v": "b"}, {"v": None}, {"v": 2}, {"v": "a"}, {"v": 10}]
    >>> [r["v"] for r in sort_rows(rows, ["v"], ("-v",), None)]
    [10, 2, 'b', 'a', None]
    """
    from ..errors import UsageProblem
    from ..index.lookup import did_you_mean

    for spec in reversed(sort):
        descending = spec.startswith("-")
        column = spec[1:] if descending else spec
        if column not in columns:
            raise UsageProblem(f"--sort {spec!r}: no column {column!r}{did_you_mean(column, columns)}")
        numbers, text, blank = [], [], []
        for row in rows:
            value = row.get(column)
            if value is None:
                blank.append(row)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers.append(row)
            else:
                text.append(row)
        numbers.sort(key=lambda r: r[column], reverse=descending)
        text.sort(key=lambda r: str(r[column]), reverse=descending)
        rows = numbers + text + blank  # SQLite's order of kinds, whichever the direction
    return rows if limit is None else rows[:limit]


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


def echo_rows(rows, fmt: str, columns=None, headers: bool = True) -> None:
    text = render(rows, fmt, columns, headers)
    if text:
        click.echo(text)


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
    """A progress callback for the library, on stderr, drawn by tqdm: count, rate and
    time left; off with --quiet and when stderr is not a terminal. The total may come
    late (a bucket is ingested while it is still being listed): until then it counts.
    Use as a context manager; :meth:`write` prints a line above the bar."""

    MIN_INTERVAL = 0.2  # seconds between redraws

    def __init__(self, label: str, quiet: bool, file=None):
        self.file = file if file is not None else sys.stderr
        self.label = label
        self.show = not quiet and self.file.isatty()
        self.bar = None

    def step(self, total: int | None) -> None:
        if not self.show:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(desc=self.label, total=total, file=self.file, unit="run", dynamic_ncols=True,
                            mininterval=self.MIN_INTERVAL, leave=True)
        elif total is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        self.bar.update(1)

    def advance(self, done: int, total: int | None) -> None:
        """Move the bar to ``done`` (of ``total``): for work reported a batch at a time."""
        if not self.show:
            return
        if self.bar is None:
            self.step(total)
            done -= 1
        elif total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.update(max(0, done - self.bar.n))

    def write(self, line: str) -> None:
        """A line on stderr that does not tear the bar."""
        if self.bar is not None:
            self.bar.write(line, file=self.file)
        else:
            click.echo(line, err=True)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
