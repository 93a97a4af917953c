"""Reading run-log JSON: every way a file or object can be bad becomes one
:class:`~runlog.errors.BadRunLog` naming it, and pydantic's errors become
``field.path: message`` parts on one line.

>>> run_from_json({"run_id": "r1"}, "r1.json").run_id
'r1'
>>> parse_json(b'{"run_id": ', "r1.json")
Traceback (most recent call last):
...
runlog.errors.BadRunLog: r1.json: is not JSON (line 1, column 12: Expecting value)
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import BadRunLog
from ..models import RunLog
from ..values import one_line


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


def parse_model(model: type, data: Any, path: Path | str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRunLog(path, validation_message(exc)) from None
    except RecursionError:
        raise BadRunLog(path, "is nested too deeply to read") from None


def run_from_json(data: Any, path: Path | str) -> RunLog:
    """The RunLog in parsed JSON ``data``; ``path`` names the source in errors."""
    if not isinstance(data, dict):
        raise BadRunLog(path, f"is JSON but not a run log (top level is {json_type(data)}, not an object)")
    return parse_model(RunLog, data, path)


def chunk_from_json(data: Any, model, path: Path | str):
    """One StepLog/BranchLog chunk in parsed JSON ``data``."""
    if not isinstance(data, dict):
        raise BadRunLog(path, f"is not a JSON object (top level is {json_type(data)})")
    return parse_model(model, data, path)


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, as a user reads it in the file.

    >>> json_type(None), json_type([1]), json_type(True), json_type(1.5)
    ('null', 'an array', 'a boolean', 'a number')
    """
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"),
                       (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__
