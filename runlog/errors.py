"""runlog's exception types. Only the CLI turns them into click errors."""


class RunlogError(Exception):
    """Base class: a problem a user can fix, with a message that says how.

    ``exit_code`` is what the CLI exits with: 1 when some input failed, 2 for a
    usage error (an option or name that points at nothing)."""

    exit_code = 1


class UsageProblem(RunlogError):
    """What the user asked for points at nothing (exit code 2)."""

    exit_code = 2


class UnknownName(UsageProblem, ValueError):
    """A run, metric, param, tag, status or step that no run has: the message names the
    closest ones ("did you mean ..."). A ``ValueError``, as a bad argument is in Python."""


class RunNotFound(UnknownName, LookupError):
    """No run with that id in the store or the index."""


class NoIndex(UsageProblem):
    """The index file a read command was pointed at does not exist, or is not an index."""

    def __init__(self, path, why: str = "no index at"):
        self.path = str(path)
        super().__init__(f"{why} {path}: build it with `runlog ingest STORE --db {path}` "
                         "(STORE: a run-log folder such as .run_log_store, or a URL)")


class InvalidName(RunlogError, ValueError):
    """A run_id, step or branch name that could escape the store folder."""


class BadRunLog(RunlogError):
    """A run-log file that is unreadable, not JSON, or of the wrong shape."""

    def __init__(self, path, message):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return type(self), (self.path, self.reason)


class MissingExtra(RunlogError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, extra, module):
        self.extra, self.module = extra, module
        super().__init__(
            f"this needs {module}, which is not installed: pip install 'runlog-store[{extra}]'"
        )

    def __reduce__(self):
        return type(self), (self.extra, self.module)


class StorageError(RunlogError):
    """Object storage that cannot be reached or refuses us (network, credentials, bucket)."""
