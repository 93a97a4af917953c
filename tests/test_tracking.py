"""track_this and RUNNABLE_TRACK_* variables: the seed's semantics, case by case; and
recording that touches no process-wide state (two threads, two steps, each its own values)."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import threading

import pytest
from pydantic import BaseModel, Field

from runlog import Run, RunLogStore, get_experiment_tracker_context, track_this
from runlog.errors import RunlogError
from runlog.record import ExperimentTracker, register_tracker
from runlog.record.tracking import env_metrics, parse_env_value


class Eggs(BaseModel):
    ham: str = Field(alias="Ham")


def recorded(tmp_path, body, env=None):
    """Run ``body`` inside one step, and a shell command exporting ``env`` as that step's
    child (the channel for RUNNABLE_TRACK_* variables); return the step's user_defined_metrics."""
    store = tmp_path / "store"
    with Run.start(run_id="r", store=store) as run:
        with run.step("s") as step:
            body()
            if env is not None:
                step.run_command(["; ".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())])
    return RunLogStore(store).get_run("r").steps["s"].user_defined_metrics


@pytest.mark.parametrize(
    "body, expected",
    [
        (lambda: track_this(answer=42.0), {"answer": 42.0}),
        (lambda: track_this(spam="hello", is_it_true=False), {"spam": "hello", "is_it_true": False}),
        (lambda: [track_this(step=0, spam="hello"), track_this(step=1, spam="hey")], {"spam": {"0": "hello", "1": "hey"}}),
        (lambda: track_this(step=3, late=1), {"late": {"3": 1}}),
        (lambda: [track_this(step=0, x=1), track_this(step=2, x=3)], {"x": {"0": 1, "2": 3}}),
        (lambda: [track_this(step=1, x=1), track_this(step=0, x=0)], {"x": {"0": 0, "1": 1}}),
        (lambda: [track_this(x=1), track_this(x=2)], {"x": 2}),
        (lambda: track_this(eggs=Eggs(Ham="world")), {"eggs": {"Ham": "world"}}),
        (lambda: track_this(step=1, eggs=Eggs(Ham="universe")), {"eggs": {"1": {"Ham": "universe"}}}),
        (lambda: track_this(curve=[0.9, 0.5]), {"curve": [0.9, 0.5]}),
    ],
    ids=["bare", "string-bool", "series", "only-step-3", "sparse", "out-of-order", "overwrite", "pydantic-alias",
         "pydantic-step", "list"],
)
def test_track_this_shapes(tmp_path, body, expected):
    assert recorded(tmp_path, body) == expected


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"RUNNABLE_TRACK_answer": "42.0"}, {"answer": 42.0}),
        ({"runnable_TRACK_count": "12"}, {"count": 12}),
        ({"Runnable_Track_Mixed": "1"}, {"mixed": 1}),
        ({"MAGNUS_TRACK_old": "0.5"}, {"old": 0.5}),
        ({"RUNNABLE_TRACK_eggs": '{"ham": "world"}'}, {"eggs": {"ham": "world"}}),
        ({"RUNNABLE_TRACK_layers": "[64, 32]"}, {"layers": [64, 32]}),
        ({"RUNNABLE_TRACK_flag": "true"}, {"flag": "true"}),
        ({"RUNNABLE_TRACK_word": "hello"}, {"word": "hello"}),
        ({"RUNNABLE_TRACK_broken": "{not json"}, {"broken": "{not json"}),
        ({"RUNNABLE_TRACK_neg": "-1e-3"}, {"neg": -0.001}),
        ({"RUNNABLE_TRACK_loss_STEP_1": "0.5", "RUNNABLE_TRACK_loss": "0.9"}, {"loss": {"0": 0.9, "1": 0.5}}),
        ({"RUNNABLE_TRACK_loss_STEP_2": "0.3"}, {"loss": {"2": 0.3}}),
        ({"RUNNABLE_TRACK_": "x", "NOT_RUNNABLE_TRACK_x": "1"}, {}),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) and v else "",
)
def test_environment_variables(tmp_path, env, expected):
    assert recorded(tmp_path, lambda: None, env=env) == expected


def test_variables_already_set_before_the_step_do_not_count(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNABLE_TRACK_stale", "1")
    assert recorded(tmp_path, lambda: None, env={"RUNNABLE_TRACK_fresh": "2"}) == {"fresh": 2}


@pytest.mark.parametrize("text, value", [("1", 1), ("1.5", 1.5), (".5", 0.5), ("1e3", 1000.0), (" 7 ", 7), ("0x10", "0x10"), ("nan", "nan")])
def test_parse_env_value(text, value):
    assert parse_env_value(text) == value


def test_env_metrics_ignores_unchanged():
    before = {"RUNNABLE_TRACK_a": "1"}
    assert env_metrics({"RUNNABLE_TRACK_a": "1", "RUNNABLE_TRACK_b": "2"}, before) == [("b", 0, 2)]
    assert env_metrics({"RUNNABLE_TRACK_a": "3"}, before) == [("a", 0, 3)]


def test_track_this_outside_a_step_warns_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNLOG_TRACK_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    warning = "^track_this called outside a runlog step: values not recorded$"
    with pytest.warns(UserWarning, match=warning):
        track_this(before=1)
    assert list(tmp_path.iterdir()) == []  # no side file, no store
    with Run.start(run_id="r", store=tmp_path / "store") as run:
        with pytest.warns(UserWarning, match=warning):
            track_this(between=2)  # in a run, but in none of its steps
        with run.step("s"):
            track_this(inside=3)
    with pytest.warns(UserWarning, match=warning):
        track_this(after=4)
    text = (tmp_path / "store" / "r.json").read_text()
    assert RunLogStore(tmp_path / "store").get_run("r").steps["s"].user_defined_metrics == {"inside": 3}
    assert [name for name in ("before", "between", "after") if name in text] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize("step", [-1, 1.5, True, "1"])
def test_bad_step_is_refused(step):
    with pytest.raises(RunlogError, match="step must be a non-negative int"):
        track_this(step=step, x=1)


def test_default_tracker_context_is_a_null_context(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNLOG_EXPERIMENT_TRACKER", raising=False)
    with get_experiment_tracker_context() as client:  # outside any run
        assert client is None
    with Run.start(run_id="r", store=tmp_path / "s") as run:
        assert run.tracker.name == "do-nothing"
        with get_experiment_tracker_context() as client:
            assert client is None


def test_unknown_tracker_is_a_clear_error():
    import runlog.record.tracking as tracking

    with pytest.raises(RunlogError, match="unknown experiment tracker 'wandb'"):
        tracking.select_tracker("wandb")


# -- recording changes no process-wide state ----------------------------------------


class _OwnTracker(ExperimentTracker):
    """A tracker whose client context is the tracker itself, to see whose it is."""

    name = "own"

    def client_context(self):
        return contextlib.nullcontext(self)


def test_each_run_has_its_own_tracker_and_each_thread_finds_its_run(tmp_path, monkeypatch):
    register_tracker("own", _OwnTracker)
    monkeypatch.setenv("RUNLOG_EXPERIMENT_TRACKER", "own")
    found: dict[str, list] = {}
    barrier = threading.Barrier(2)

    def record(run_id: str) -> None:
        with Run.start(run_id=run_id, store=tmp_path / "s") as run:
            with get_experiment_tracker_context() as between_steps:
                barrier.wait(timeout=30)
            with run.step("train"):
                with get_experiment_tracker_context() as in_step:
                    barrier.wait(timeout=30)
            found[run_id] = [run.tracker, between_steps, in_step]

    threads = [threading.Thread(target=record, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found["a"][0] is not found["b"][0]
    for tracker, between_steps, in_step in found.values():
        assert between_steps is tracker and in_step is tracker
    with get_experiment_tracker_context() as outside:
        assert outside is None


def test_two_threads_recording_two_steps_at_once_each_get_exactly_their_own_values(tmp_path):
    points = 200
    barrier = threading.Barrier(2)
    errors = []

    def record(run, name: str, offset: int) -> None:
        try:
            with run.step(name) as step:
                barrier.wait(timeout=30)
                for i in range(points):
                    track_this(step=i, **{f"mine_{name}": offset + i, "shared": offset + i})
                barrier.wait(timeout=30)
                step.run_command([f"export RUNNABLE_TRACK_exported={offset}; "
                                  f"{shlex.quote(sys.executable)} -c 'from runlog import track_this; "
                                  f"track_this(child={offset})'"])
        except BaseException as exc:  # reported below: an exception in a thread would pass unseen
            errors.append(exc)

    with Run.start(run_id="r", store=tmp_path / "s") as run:
        threads = [threading.Thread(target=record, args=(run, name, offset))
                   for name, offset in (("left", 1000), ("right", 2000))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    steps = RunLogStore(tmp_path / "s").get_run("r").steps
    for name, offset in (("left", 1000), ("right", 2000)):
        series = {str(i): offset + i for i in range(points)}
        assert steps[name].user_defined_metrics == {
            f"mine_{name}": series, "shared": series, "exported": offset, "child": offset}


def test_recording_a_step_leaves_the_process_environment_as_it_was(tmp_path):
    before = dict(os.environ)
    with Run.start(run_id="r", store=tmp_path / "s") as run:
        with run.step("s") as step:
            assert dict(os.environ) == before
            track_this(x=1)
            step.run_command(["export RUNNABLE_TRACK_y=2"])
            assert dict(os.environ) == before
    assert dict(os.environ) == before
    assert RunLogStore(tmp_path / "s").get_run("r").steps["s"].user_defined_metrics == {"x": 1, "y": 2}


def test_a_variable_set_in_this_process_inside_a_step_is_not_recorded(tmp_path, monkeypatch):
    def set_in_process():
        monkeypatch.setenv("RUNNABLE_TRACK_inprocess", "1")  # not a channel: the environment is shared
        track_this(kept=2)

    assert recorded(tmp_path, set_in_process) == {"kept": 2}
