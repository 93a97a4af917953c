"""``python -m runlog.cli``: the same as the ``runlog`` command."""

from . import main

main()
