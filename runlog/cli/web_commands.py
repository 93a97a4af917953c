"""``runlog serve``: browse the index in Datasette."""

from __future__ import annotations

import click

from .common import db_option, friendly_errors


@click.command(name="serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback unless told otherwise).")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open a web browser on the runs page.")
@friendly_errors
def serve_command(db_path, host, port, open_browser):
    """Browse the index in Datasette, read-only: the runs page (sort and filter by any
    metric or param, compare), run pages with charts, every table, stored queries.

    \b
    Example:
        runlog serve --db runlog.db --port 8001 --open
    """
    from ..web.serve import serve

    def ready(url):
        click.echo(f"Serving {db_path} read-only at {url} (Ctrl-C to stop)", err=True)

    serve(db_path, host=host, port=port, open_browser=open_browser, on_ready=ready)
