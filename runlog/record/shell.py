"""Running a command in a shell, as runnable's shell tasks did: its output copied to
ours and to a log file, and its environment read back at the end, so that
``export RUNNABLE_TRACK_x=1`` in the command is seen.

>>> run_in_shell(["echo hi; export RUNNABLE_TRACK_loss=0.5"], Path("/tmp/out.log"))[0]   # doctest: +SKIP
0
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import RunlogError


def shell_text(command: list[str]) -> str:
    """One argument is shell text (``"export X=1; make"``); several are an argv, quoted."""
    if not command:
        raise RunlogError("no command given: put it after '--', e.g. runlog exec --run-id r --step s -- make")
    return command[0] if len(command) == 1 else shlex.join(command)


def run_in_shell(command: list[str], log_path: Path, env: Mapping[str, str] | None = None,
                 capture_env: bool = True) -> tuple[int, dict[str, str], dict[str, str]]:
    """Run the command in bash (or sh) with the environment ``env`` (default: this
    process's), copying its output to our stdout and to ``log_path``.

    Returns ``(exit code, environment at the end, environment at the start)``: the
    command's own, never this process's."""
    script = shell_text(command)
    shell = shutil.which("bash") or "/bin/sh"
    start_env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="runlog-env-") as scratch:
        dump = Path(scratch) / "env"
        # The trap runs on any exit, `exit 3` and `set -e` included, and keeps the code.
        wrapper = f'trap \'env -0 > "$RUNLOG_ENV_DUMP"\' EXIT\n{script}\n'
        env = dict(start_env, RUNLOG_ENV_DUMP=str(dump)) if capture_env else start_env
        try:
            proc = subprocess.Popen([shell, "-c", wrapper if capture_env else script], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise RunlogError(f"cannot start {shell}: {exc.strerror or exc}") from None
        out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        with open(log_path, "wb") as log:
            assert proc.stdout is not None
            for chunk in iter(lambda: proc.stdout.read1(65536), b""):
                log.write(chunk)
                if out is not None:
                    out.write(chunk)
                    out.flush()
                else:
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
        code = proc.wait()
        end_env = _read_env_dump(dump) if capture_env else {}
    end_env.pop("RUNLOG_ENV_DUMP", None)
    return code, end_env, start_env


def _read_env_dump(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            env[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env
