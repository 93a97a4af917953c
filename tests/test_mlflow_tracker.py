"""The live MLflow tracker: a pipeline run logs to a real MLflow server as it goes."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mlflow_server import build_index, free_port, mlflow_server  # noqa: F401  (fixture)
from runlog.cli import cli
from runlog.record.run import Run
from runlog.record.tracking import get_experiment_tracker_context, track_this

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog-store[test]')")
from mlflow import MlflowClient  # noqa: E402


pytestmark = pytest.mark.xdist_group("mlflow")

@pytest.fixture
def mlflow_tracking(monkeypatch, mlflow_server):
    """RUNLOG_EXPERIMENT_TRACKER=mlflow against the session server; do-nothing again afterwards."""
    monkeypatch.setenv("RUNLOG_EXPERIMENT_TRACKER", "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    yield mlflow_server.uri
    mlflow.set_tracking_uri(None)


def only_run(client: MlflowClient, experiment: str, run_id: str):
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`runlog.run_id` = '{run_id}'")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def steps_values(client, run, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


def test_pipeline_logs_live_and_export_only_completes_it(tmp_path, mlflow_tracking):
    uri = mlflow_tracking
    with Run.start(run_id="live-1", tag="live-exp", store=tmp_path / "s", parameters={"lr": 0.1}) as run:
        assert type(run.tracker).__name__ == "MlflowTracker"
        with run.step("train"):
            for epoch in range(3):
                track_this(step=epoch, loss=1 / (epoch + 1))
            track_this(note="warm", flag=True, cfg={"depth": 3})
            with get_experiment_tracker_context() as active:
                mlflow.log_metric("direct", 7.0)
                direct_run = active.info.run_id
        client = MlflowClient(uri)
        # Logged as it happens, before the run ends.
        live = only_run(client, "live-exp", "live-1")
        assert live.info.status == "RUNNING"
        assert steps_values(client, live, "loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
        with run.step("evaluate"):
            track_this(loss=0.25)
    done = only_run(client, "live-exp", "live-1")
    assert done.info.run_id == direct_run
    assert done.info.run_name == "live-1"
    assert done.info.status == "FINISHED"
    assert steps_values(client, done, "evaluate/loss") == [(0, 0.25)]
    assert steps_values(client, done, "cfg.depth") == [(0, 3.0)]
    assert steps_values(client, done, "direct") == [(0, 7.0)]
    assert done.data.params == {"note_0": "warm", "flag_0": "true"}
    assert (done.data.tags["runlog.run_id"], done.data.tags["runlog.status"]) == ("live-1", "SUCCESS")

    # An export of the same run finds it and only adds what the tracker could not know.
    db = build_index(tmp_path / "s", tmp_path / "runlog.db")
    result = CliRunner().invoke(cli, ["export", "mlflow", "live-1", "--db", str(db), "--tracking-uri", uri, "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "1 run exported (1 resumed), 0 skipped as already in MLflow, 0 failed; 0 metric points and 1 param sent"
    )
    after = only_run(client, "live-exp", "live-1")
    assert steps_values(client, after, "loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert after.data.params == {"note_0": "warm", "flag_0": "true", "lr": "0.1"}
    assert after.data.tags["runlog.export_complete"] == "true"


def test_failed_run_and_default_experiment(tmp_path, mlflow_tracking):
    with pytest.raises(RuntimeError):
        with Run.start(run_id="live-fail", store=tmp_path / "s") as run:
            with run.step("boom"):
                track_this(step=2, score=0.5)
                raise RuntimeError("boom")
    run = only_run(MlflowClient(mlflow_tracking), "Default", "live-fail")
    assert run.info.status == "FAILED"
    assert run.data.tags["runlog.status"] == "FAIL"


def test_unreachable_server_warns_once_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNLOG_EXPERIMENT_TRACKER", "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.warns(UserWarning) as caught:
        with Run.start(run_id="offline-1", tag="t", store=tmp_path / "s") as run:
            with run.step("train"):
                track_this(loss=0.5)
    messages = [str(w.message) for w in caught if "MLflow tracker" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("MLflow tracker, run offline-1: MLflow tracking server http://127.0.0.1:")
    assert messages[0].endswith("the values stay in the run log and `runlog export mlflow` completes the MLflow run")
    assert run.store.get_run("offline-1").status == "SUCCESS"
