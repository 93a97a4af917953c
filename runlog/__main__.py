"""``python -m runlog``: the same as the ``runlog`` command, e.g. ``python -m runlog runs --help``."""

from .cli import main

main()
