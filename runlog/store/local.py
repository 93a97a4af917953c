"""File-backed run-log store: the two layouts of runnable, crash- and parallel-safe.

``file-system``: ``<root>/<run_id>.json`` holds the whole run; every update is a
locked read-modify-write followed by an atomic replace.

``chunked-fs``: ``<root>/<run_id>/RunLog.json`` plus one file per step and per
branch. runlog writes the seed-era chunk names ``StepLog-<internal name>-<time_ns>.json``
and ``BranchLog-<internal name>-<time_ns>.json``: a writer never rewrites a file
that another process may be writing, so processes updating different steps or
branches of one run cannot lose each other's work. Readers take the newest version
of each name, and also read runnable 0.6+'s ``BranchLog-<name>.json`` files.

>>> store = RunLogStore("/tmp/doctest-store", layout="chunked-fs")  # doctest: +SKIP
>>> store.create_run(RunLog(run_id="r1"))                            # doctest: +SKIP
>>> store.get_run("r1").status                                        # doctest: +SKIP
'CREATED'
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import BadRunLog, InvalidName, RunlogError, RunNotFound
from ..models import BranchLog, RunLog, StepLog
from ..output import one_line

Layout = Literal["file-system", "chunked-fs"]
LAYOUTS: tuple[str, ...] = ("file-system", "chunked-fs")
DEFAULT_STORE = ".run_log_store"
MAX_NAME_BYTES = 200  # leaves room for "StepLog-" + "-<time_ns>.json" under NAME_MAX (255)

_VERSIONED = re.compile(r"^(StepLog|BranchLog)-(.+)-(\d{16,})\.json$")
_G3_BRANCH = re.compile(r"^BranchLog-(.+)\.json$")
_PARAMETER = re.compile(r"^Parameter-(.+)\.json$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def validate_name(value: Any, what: str = "run_id") -> str:
    """Refuse a name that could escape the store folder or break a file name.

    >>> validate_name("blazing-colden-0544")
    'blazing-colden-0544'
    >>> validate_name("../etc")
    Traceback (most recent call last):
    ...
    runlog.errors.InvalidName: invalid run_id '../etc': must not contain '/'
    """
    if not isinstance(value, str) or not value:
        raise InvalidName(f"invalid {what} {value!r}: must be a non-empty string")
    for bad, label in (("/", "'/'"), ("\\", "'\\'"), ("..", "'..'")):
        if bad in value:
            raise InvalidName(f"invalid {what} {value!r}: must not contain {label}")
    if _CONTROL.search(value):
        raise InvalidName(f"invalid {what} {value!r}: must not contain NUL, newlines or control characters")
    if value.startswith(".") or value != value.strip():
        raise InvalidName(f"invalid {what} {value!r}: must not start with '.' or with or end in spaces")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidName(f"invalid {what} {value[:40]!r}...: longer than {MAX_NAME_BYTES} bytes")
    return value


# -- low-level file helpers ----------------------------------------------------


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old or the new file, never a torn one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:60]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; run logs are shared like any file
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for a read-modify-write."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def regular_file_stat(path: Path) -> os.stat_result:
    """``os.stat(path)``, refusing a directory, FIFO, socket or device with :class:`BadRunLog`
    (reading a FIFO planted in a store would wait forever)."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise BadRunLog(path, "is a directory, not a run-log file")
    if not stat.S_ISREG(st.st_mode):
        raise BadRunLog(path, "is not a regular file (a FIFO, socket or device), not a run-log file")
    return st


def read_json(path: Path) -> Any:
    """Parse one JSON file, turning every way it can be bad into :class:`BadRunLog`."""
    try:
        regular_file_stat(path)
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise BadRunLog(path, "is a directory, not a run-log file") from None
    except OSError as exc:
        raise BadRunLog(path, f"cannot be read ({exc.strerror or exc})") from None
    return parse_json(raw, path)


def parse_json(raw: bytes, path: Path | str) -> Any:
    """Parse the bytes of one JSON file or object; ``path`` names it in errors."""
    if not raw.strip():
        raise BadRunLog(path, "is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRunLog(path, f"is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRunLog(path, f"is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise BadRunLog(path, "is nested too deeply to read") from None
    except ValueError as exc:  # an integer of more than 4300 digits (sys.set_int_max_str_digits)
        raise BadRunLog(path, f"holds a number too long to read ({str(exc).split(';')[0]})") from None


def validation_message(exc: ValidationError) -> str:
    """pydantic errors as ``field.path: message`` parts on one line."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(one_line(str(p)) if len(str(p)) <= 80 else one_line(str(p)[:77]) + "..." for p in err["loc"])
        loc = loc or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_model(model: type, data: Any, path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRunLog(path, validation_message(exc)) from None
    except RecursionError:
        raise BadRunLog(path, "is nested too deeply to read") from None


# -- reading any layout --------------------------------------------------------


def read_run_file(path: Path) -> RunLog:
    """Read a ``file-system`` run log (one JSON file holding the whole run)."""
    return run_from_json(read_json(path), path)


def run_from_json(data: Any, path: Path | str) -> RunLog:
    """The RunLog in parsed JSON ``data``; ``path`` names the source in errors."""
    if not isinstance(data, dict):
        raise BadRunLog(path, f"is JSON but not a run log (top level is {type(data).__name__})")
    return parse_model(RunLog, data, path)


def read_run_folder(folder: Path) -> RunLog:
    """Read a ``chunked-fs`` run folder of any generation and re-attach its branches."""
    folder = Path(folder)
    head = folder / "RunLog.json"
    if not head.is_file():
        raise BadRunLog(folder, "has no RunLog.json: not a chunked run folder")
    for attempt in range(5):
        try:
            return _read_chunks(folder, head)
        except FileNotFoundError:
            # A writer replaced a chunk between our listing and our read: list again.
            time.sleep(0.01 * (attempt + 1))
    return _read_chunks(folder, head)


def _read_chunks(folder: Path, head: Path) -> RunLog:
    run = read_run_file(head)
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise BadRunLog(folder, f"cannot be listed ({exc.strerror or exc})") from None
    return assemble_chunks(run, names, lambda name: read_json(folder / name),
                           lambda name, model: _read_chunk(folder / name, model))


def assemble_chunks(run: RunLog, names: list[str], load_json, load_chunk) -> RunLog:
    """Put a chunked run together from the names of its chunk files (any order):
    ``load_json(name)`` parses one, ``load_chunk(name, model)`` parses one into a model."""
    names = sorted(names)
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    g3_branches: dict[str, str] = {}
    for name in names:
        if name.startswith("."):
            continue
        if match := _VERSIONED.match(name):
            key, version = (match.group(1), match.group(2)), int(match.group(3))
            if key not in newest or newest[key][0] < version:
                newest[key] = (version, name)
        elif match := _G3_BRANCH.match(name):
            g3_branches[match.group(1)] = name
        elif match := _PARAMETER.match(name):
            run.parameters.setdefault(match.group(1), load_json(name))
    steps: dict[str, tuple[int, StepLog]] = {}
    branches: dict[str, tuple[int, BranchLog]] = {}
    for (kind, internal), (version, name) in newest.items():
        target, model = (steps, StepLog) if kind == "StepLog" else (branches, BranchLog)
        target[internal] = (version, load_chunk(name, model))
    for internal, name in g3_branches.items():
        branches.setdefault(internal, (0, load_chunk(name, BranchLog)))
    _attach(run, steps, branches)
    return run


def _read_chunk(path: Path, model):
    try:
        data = read_json(path)
    except BadRunLog:
        if not path.exists():  # replaced by a newer version since we listed the folder
            raise FileNotFoundError(path) from None
        raise
    return chunk_from_json(data, model, path)


def chunk_from_json(data: Any, model, path: Path | str):
    """One StepLog/BranchLog chunk in parsed JSON ``data``."""
    if not isinstance(data, dict):
        raise BadRunLog(path, "is not a JSON object")
    return parse_model(model, data, path)


def _attach(run: RunLog, steps: dict[str, tuple[int, StepLog]], branches: dict[str, tuple[int, BranchLog]]) -> None:
    """Put chunk files back in place: a step in the longest branch whose name prefixes
    it, a branch in the longest step whose name prefixes it. Steps come in the order
    they started (file versions break ties), as in a file-system log."""
    branch_logs = {name: log for name, (_, log) in branches.items()}
    versions = {name: version for name, (version, _) in steps.items()}
    for _, step in steps.values():
        parent = _longest_prefix(step.internal_name, branch_logs)
        (branch_logs[parent].steps if parent else run.steps)[step.internal_name] = step
    # G3 branch files hold their own steps: index those too, so nested branches find owners.
    every_step = {s.internal_name: s for s in run.iter_steps()}
    for branch in branch_logs.values():
        for inner in branch.steps.values():
            every_step.setdefault(inner.internal_name, inner)
    for name in sorted(branch_logs, key=lambda n: (n.count("."), n)):
        owner = _longest_prefix(name, every_step)
        if owner is not None:  # an orphan branch has nothing to hang on; the run stays readable
            every_step[owner].branches[name] = branch_logs[name]
    if steps:
        _sort_steps(run.steps, versions)


def _sort_steps(steps: dict[str, StepLog], versions: dict[str, int]) -> None:
    ordered = sorted(steps.values(), key=lambda s: (_first_time(s), versions.get(s.internal_name, 0)))
    steps.clear()
    steps.update((s.internal_name, s) for s in ordered)
    for step in ordered:
        for branch in step.branches.values():
            _sort_steps(branch.steps, versions)


def _first_time(step: StepLog) -> str:
    """When a step started: its first attempt, or for a composite its earliest inner step."""
    times = [a.start_time for a in step.attempts if a.start_time]
    times += [_first_time(s) for b in step.branches.values() for s in b.steps.values()]
    return min(times, default="~")


def _longest_prefix(name: str, candidates) -> str | None:
    best = None
    for other in candidates:
        if name.startswith(other + ".") and (best is None or len(other) > len(best)):
            best = other
    return best


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    tag: str
    layout: str
    path: Path


# -- the store -----------------------------------------------------------------


class RunLogStore:
    """Runs in a folder, in either layout. New runs use ``layout``; existing runs
    keep the layout they were found in.

    A URL root (``s3://bucket/prefix``, any fsspec protocol) makes a
    :class:`~runlog.remote_store.RemoteRunLogStore` with the same methods;
    ``endpoint_url`` points s3:// at an S3-compatible server such as MinIO.

    >>> RunLogStore("s3://bucket/runs", endpoint_url="http://127.0.0.1:9000")  # doctest: +SKIP
    """

    def __new__(cls, root: str | os.PathLike = DEFAULT_STORE, layout: Layout = "file-system",
                endpoint_url: str | None = None):
        from .objects.base import is_url

        if cls is RunLogStore and is_url(root):
            from .remote import RemoteRunLogStore

            return super().__new__(RemoteRunLogStore)
        return super().__new__(cls)

    def __init__(self, root: str | os.PathLike = DEFAULT_STORE, layout: Layout = "file-system",
                 endpoint_url: str | None = None):
        if layout not in LAYOUTS:
            raise RunlogError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
        if endpoint_url:
            raise RunlogError(f"--endpoint-url is for s3:// stores, and {root} is a folder")
        self.root = Path(root)
        self.layout = layout
        self._last_version = 0

    # paths
    def _file(self, run_id: str) -> Path:
        return self.root / f"{validate_name(run_id)}.json"

    def _folder(self, run_id: str) -> Path:
        return self.root / validate_name(run_id)

    def layout_of(self, run_id: str) -> Layout | None:
        if (self._folder(run_id) / "RunLog.json").is_file():
            return "chunked-fs"
        if self._file(run_id).is_file():
            return "file-system"
        return None

    def exists(self, run_id: str) -> bool:
        return self.layout_of(run_id) is not None

    def default_catalog(self) -> Path:
        """Where runs of this store keep catalog files unless told otherwise."""
        return self.root.parent / ".catalog"

    def ensure_run(self, run: RunLog) -> None:
        """Create ``run`` unless a run of that id exists (safe when processes race to create it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".create.lock"):
            if not self.exists(run.run_id):
                self.create_run(run)

    # reading
    def get_run(self, run_id: str) -> RunLog:
        """The whole run, branches re-attached, whatever its layout or generation."""
        layout = self.layout_of(run_id)
        if layout == "chunked-fs":
            return read_run_folder(self._folder(run_id))
        if layout == "file-system":
            return read_run_file(self._file(run_id))
        raise RunNotFound(f"no run {run_id!r} in {self.root}")

    def list_runs(self) -> list[RunInfo]:
        """Every readable run in the folder, sorted by run_id (unreadable ones are skipped)."""
        found = []
        for path, layout in self.iter_sources():
            head = path / "RunLog.json" if layout == "chunked-fs" else path
            try:
                data = read_json(head)
            except BadRunLog:
                continue
            if not isinstance(data, dict):
                continue
            found.append(
                RunInfo(
                    run_id=str(data.get("run_id", path.stem)),
                    status=str(data.get("status", "")),
                    tag=str(data.get("tag") or ""),
                    layout=layout,
                    path=path,
                )
            )
        return sorted(found, key=lambda info: info.run_id)

    def iter_sources(self) -> Iterator[tuple[Path, Layout]]:
        """``(path, layout)`` of every run file or run folder directly in the store.

        Hidden files, temporary files and symlinks that lead out of the folder are
        skipped, so nothing planted in the store can make a reader leave it."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return
        root = self.root.resolve()
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling or a loop: the reader reports it
                    if entry.name.endswith(".json"):
                        yield path, "file-system"
                    continue
                if root not in target.parents:
                    continue
            if entry.name.endswith(".json"):
                yield path, "file-system"
            elif _is_dir(entry) and (path / "RunLog.json").exists():
                yield path, "chunked-fs"

    # writing
    def create_run(self, run: RunLog, layout: Layout | None = None) -> None:
        """Write a new run (refused when the run_id is taken)."""
        layout = layout or self.layout
        if self.exists(run.run_id):
            raise RunlogError(f"run {run.run_id!r} already exists in {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        if layout == "chunked-fs":
            folder = self._folder(run.run_id)
            folder.mkdir(exist_ok=True)
            head = run.model_copy(update={"steps": {}})
            atomic_write(folder / "RunLog.json", head.to_json())
            for step in run.steps.values():
                self._write_step_chunks(run.run_id, step)
        else:
            with file_lock(self._lock_path(run.run_id)):
                atomic_write(self._file(run.run_id), run.to_json())

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        """Hold the run's lock across several reads and writes (pass ``_locked=True`` to
        the writes made inside, since the lock is not re-entrant)."""
        self._require(run_id)
        with file_lock(self._lock_path(run_id)):
            yield

    def _maybe_lock(self, run_id: str, already: bool):
        return contextlib.nullcontext() if already else file_lock(self._lock_path(run_id))

    def update_run(self, run_id: str, _locked: bool = False, **fields: Any) -> RunLog:
        """Set run-level fields (status, tag, parameters...) under the run's lock."""
        layout = self._require(run_id)
        with self._maybe_lock(run_id, _locked):
            if layout == "chunked-fs":
                head_path = self._folder(run_id) / "RunLog.json"
                head = read_run_file(head_path).model_copy(update=fields)
                atomic_write(head_path, head.to_json())
                return head
            run = read_run_file(self._file(run_id)).model_copy(update=fields)
            atomic_write(self._file(run_id), run.to_json())
            return run

    def put_step(self, run_id: str, step: StepLog, _locked: bool = False) -> None:
        """Add or replace one step (at any depth, placed by its internal name)."""
        for part in step.internal_name.split("."):
            validate_name(part, "step name")
        validate_name(step.internal_name, "step name")
        layout = self._require(run_id)
        if layout == "chunked-fs":
            self._write_chunk(run_id, "StepLog", step.internal_name, step.model_copy(update={"branches": {}}))
            return
        with self._maybe_lock(run_id, _locked):
            run = read_run_file(self._file(run_id))
            _place_step(run, step)
            atomic_write(self._file(run_id), run.to_json())

    def put_branch(self, run_id: str, branch: BranchLog, _locked: bool = False) -> None:
        """Add or replace a branch's own record (its status); its steps come via put_step."""
        validate_name(branch.internal_name, "branch name")
        layout = self._require(run_id)
        if layout == "chunked-fs":
            self._write_chunk(run_id, "BranchLog", branch.internal_name, branch.model_copy(update={"steps": {}}))
            return
        with self._maybe_lock(run_id, _locked):
            run = read_run_file(self._file(run_id))
            owner = run.find_step(_parent_name(branch.internal_name))
            if owner is None:
                raise RunlogError(f"branch {branch.internal_name!r}: no step {_parent_name(branch.internal_name)!r} in run {run_id!r}")
            old = owner.branches.get(branch.internal_name)
            owner.branches[branch.internal_name] = branch.model_copy(update={"steps": old.steps if old else {}})
            atomic_write(self._file(run_id), run.to_json())

    # internals
    def _require(self, run_id: str) -> Layout:
        layout = self.layout_of(run_id)
        if layout is None:
            raise RunNotFound(f"no run {run_id!r} in {self.root}")
        return layout

    def _lock_path(self, run_id: str) -> Path:
        if (self._folder(run_id)).is_dir():
            return self._folder(run_id) / ".lock"
        return self.root / f".{validate_name(run_id)}.lock"

    def _write_step_chunks(self, run_id: str, step: StepLog) -> None:
        self._write_chunk(run_id, "StepLog", step.internal_name, step.model_copy(update={"branches": {}}))
        for branch in step.branches.values():
            self._write_chunk(run_id, "BranchLog", branch.internal_name, branch.model_copy(update={"steps": {}}))
            for inner in branch.steps.values():
                self._write_step_chunks(run_id, inner)

    def _write_chunk(self, run_id: str, kind: str, internal_name: str, model) -> None:
        folder = self._folder(run_id)
        version = self._next_version()
        atomic_write(folder / f"{kind}-{internal_name}-{version}.json", json.dumps(model.model_dump(mode="json"), indent=4))
        # Older versions of this chunk are now shadowed; remove them (a crash here
        # only leaves an extra, older file that readers ignore).
        prefix = f"{kind}-{internal_name}-"
        for name in os.listdir(folder):
            match = _VERSIONED.match(name)
            if match and name.startswith(prefix) and match.group(2) == internal_name and int(match.group(3)) < version:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder / name)

    def _next_version(self) -> int:
        # Strictly increasing within a process even when the clock is coarse.
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version


def _parent_name(internal_name: str) -> str:
    return internal_name.rsplit(".", 1)[0] if "." in internal_name else ""


def _place_step(run: RunLog, step: StepLog) -> None:
    """Insert ``step`` into the branch its internal name points at (file-system layout)."""
    branch_name = _parent_name(step.internal_name)
    if not branch_name:
        old = run.steps.get(step.internal_name)
        run.steps[step.internal_name] = _keep_branches(step, old)
        return
    owner = run.find_step(_parent_name(branch_name))
    if owner is None:
        raise RunlogError(f"step {step.internal_name!r}: no composite step {_parent_name(branch_name)!r} in run {run.run_id!r}")
    branch = owner.branches.setdefault(branch_name, BranchLog(internal_name=branch_name, status="PROCESSING"))
    branch.steps[step.internal_name] = _keep_branches(step, branch.steps.get(step.internal_name))


def _keep_branches(step: StepLog, old: StepLog | None) -> StepLog:
    # A composite step's record is rewritten (status) while its branches are
    # written by others: keep the branches already in the file.
    if old is not None and not step.branches and old.branches:
        return step.model_copy(update={"branches": old.branches})
    return step


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
