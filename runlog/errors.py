"""runlog's exception types. Only the CLI turns them into click errors."""


class RunlogError(Exception):
    """Base class: a problem a user can fix, with a message that says how."""


class InvalidName(RunlogError, ValueError):
    """A run_id, step or branch name that could escape the store folder."""


class RunNotFound(RunlogError, LookupError):
    """No run with that id in the store."""


class BadRunLog(RunlogError):
    """A run-log file that is unreadable, not JSON, or of the wrong shape."""

    def __init__(self, path, message):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{path}: {message}")


class MissingExtra(RunlogError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra, module):
        super().__init__(
            f"this needs {module}, which is not installed: pip install 'runlog[{extra}]'"
        )


class StorageError(RunlogError):
    """Object storage that cannot be reached or refuses us (network, credentials, bucket)."""
