"""Issue 18 against the session's real MLflow server: exactly once per server, --copy,
changed runs, --replace, --verify, branches as child runs, MLflow 3 tags, report formats.
Each test uses its own run ids and experiments."""

from __future__ import annotations

import json

import pytest

from conftest import script_formats
from mlflow_server import mlflow_server  # noqa: F401  (fixture)
from runlog.models import RunLog
from test_mlflow_export import fixture_db, run_export, runs_of, synthetic_db, synthetic_run  # noqa: F401

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog-store[test]')")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.xdist_group("mlflow")

KIND = "mlflow.experimentKind"


def rows(result, fmt: str = "json") -> list[dict]:
    if fmt == "json":
        return json.loads(result.stdout)
    return [json.loads(line) for line in result.stdout.splitlines()]  # nl


def test_exactly_once_per_server_copy_and_native_tags(tmp_path, mlflow_server):
    uri = mlflow_server.uri
    client = MlflowClient(uri)
    client.create_experiment("once-kept")  # an experiment that exists is left as it is
    db = synthetic_db(tmp_path, [synthetic_run("once-1", "t", 2), synthetic_run("once-2", "t", 2)])
    first = run_export("once-1", "--experiment", "once-a", db=db, uri=uri)
    assert first.exit_code == 0, first.output
    kept = run_export("once-2", "--experiment", "once-kept", db=db, uri=uri)
    assert kept.exit_code == 0, kept.output

    again = run_export("--all", "--experiment", "once-b", "--format", "json", db=db, uri=uri)
    assert again.exit_code == 0, again.output
    assert [(r["run_id"], r["outcome"], r["experiment"], r["note"]) for r in rows(again)] == [
        ("once-1", "skipped", "once-a", "already in experiment once-a"),
        ("once-2", "skipped", "once-kept", "already in experiment once-kept"),
    ]
    assert client.get_experiment_by_name("once-b") is None  # nothing created
    assert again.stderr == "0 runs exported, 2 skipped as already in MLflow, 0 failed; 0 metric points and 0 params sent\n"

    copies = run_export("--all", "--experiment", "once-b", "--copy", "--format", "json", db=db, uri=uri)
    assert [(r["run_id"], r["outcome"], r["experiment"]) for r in rows(copies)] == [
        ("once-1", "exported", "once-b"), ("once-2", "exported", "once-b")]
    assert set(rows(copies)[0]) == {"run_id", "outcome", "experiment", "mlflow_run_id", "metric_points", "params",
                                    "renamed", "truncated", "changed", "child_runs", "note"}
    assert sorted(runs_of(client, "once-b")) == ["once-1", "once-2"]
    assert len(runs_of(client, "once-a")) == 1
    # --verify checks every copy; without --copy the export keeps to the first one
    both = run_export("once-1", "--verify", "--format", "json", db=db, uri=uri)
    assert [(r["run_id"], r["verdict"], r["experiment"]) for r in rows(both)] == [
        ("once-1", "ok", "once-a"), ("once-1", "ok", "once-b")]
    for _ in range(2):
        plain = run_export("once-1", "--format", "json", db=db, uri=uri)
        assert [(r["outcome"], r["experiment"]) for r in rows(plain)] == [("skipped", "once-a")]

    experiment = client.get_experiment_by_name("once-a")
    assert experiment.tags[KIND] == "custom_model_development"
    assert KIND not in client.get_experiment_by_name("once-kept").tags
    run = runs_of(client, "once-a")["once-1"]
    tags = run.data.tags
    assert (tags["mlflow.runName"], tags["mlflow.source.type"]) == ("once-1", "LOCAL")
    assert tags["mlflow.source.name"].endswith("once-1.json")
    assert "" not in tags.values() and "mlflow.user" not in tags

    # Every format of the report, for the same rows.
    report = rows(run_export("--all", "--format", "json", db=db, uri=uri))
    assert [(r["run_id"], r["outcome"]) for r in report] == [("once-1", "skipped"), ("once-2", "skipped")]
    for fmt, text in script_formats(report).items():
        assert run_export("--all", "--format", fmt, db=db, uri=uri).stdout == text, fmt

    # A server exported to by an older runlog: no source tags, no digest; --verify asks only for the data.
    for name in ("mlflow.source.name", "mlflow.source.type", "runlog.export_digest", "runlog.export_complete"):
        client.delete_tag(run.info.run_id, name)
    checked = run_export("once-1", "--verify", "--experiment", "once-a", "--format", "json", db=db, uri=uri)
    assert checked.exit_code == 0, checked.output
    assert [(r["run_id"], r["verdict"], r["experiment"]) for r in rows(checked)] == [("once-1", "ok", "once-a")]


def test_changed_runs_verify_and_replace(tmp_path, mlflow_server):
    uri = mlflow_server.uri
    client = MlflowClient(uri)
    db = synthetic_db(tmp_path / "a", [synthetic_run("chg-1", "t", 3), synthetic_run("chg-2", "t", 3)])
    assert run_export("--all", "--experiment", "changed", db=db, uri=uri).exit_code == 0
    # After the export, one metric value changes in both logs, and a param in chg-1's.
    both = {"loss": {"0": 1.0, "1": 0.5, "2": 0.75}}
    changed = [synthetic_run("chg-1", "t", 3, extra=both), synthetic_run("chg-2", "t", 3, extra=both)]
    changed[0].parameters["model"] = "huge"
    db = synthetic_db(tmp_path / "b", changed)

    result = run_export("--all", "--format", "json", db=db, uri=uri)
    assert result.exit_code == 1
    report = {r["run_id"]: r for r in rows(result)}
    assert report["chg-2"]["outcome"] == "resumed"
    assert report["chg-2"]["changed"] == ["loss@2: 0.3333333333333333 -> 0.75"]
    assert report["chg-1"]["outcome"] == "failed"
    found = runs_of(client, "changed")
    assert result.stderr.splitlines()[0] == (
        f"error: run chg-1: param model is 'tiny' in MLflow run {found['chg-1'].info.run_id} but 'huge' in runlog; "
        "MLflow cannot change a param: export it again with `runlog export mlflow chg-1 --replace` "
        "(deletes that MLflow run and exports the run anew)"
    )
    assert found["chg-2"].data.metrics["loss"] == 0.75  # MLflow's latest value is the new one
    assert found["chg-1"].data.metrics["loss"] == 1 / 3  # the refused run is left untouched

    verify = run_export("--all", "--verify", db=db, uri=uri)
    assert verify.exit_code == 1
    assert verify.stdout.splitlines() == [
        "run_id  experiment  result",
        "------  ----------  " + "-" * 37,
        "chg-1   changed     differs: 1 point of loss, param model",
        "chg-2   changed     ok",
        "2 runs verified: 1 ok, 1 differ, 0 missing",
    ]
    replaced = run_export("chg-1", "--replace", db=db, uri=uri)
    assert replaced.exit_code == 0, replaced.output
    assert replaced.stdout.splitlines()[-1].startswith("1 run exported (1 replaced), 0 skipped")
    after = run_export("--all", "--verify", "--format", "json", db=db, uri=uri)
    assert after.exit_code == 0, after.output
    assert [(r["run_id"], r["verdict"], r["differences"]) for r in rows(after)] == [("chg-1", "ok", []), ("chg-2", "ok", [])]
    assert run_export("--all", "--verify", "--format", "csv", db=db, uri=uri).stdout == script_formats(rows(after))["csv"]
    assert runs_of(client, "changed")["chg-1"].data.params["model"] == "huge"
    # A run nowhere on the server is missing.
    db = synthetic_db(tmp_path / "c", [synthetic_run("chg-3", "t", 1)])
    missing = run_export("chg-3", "--verify", "--format", "tsv", "--no-headers", db=db, uri=uri)
    assert (missing.exit_code, missing.stdout) == (1, "chg-3\tmissing\tt\t\t[]\n")


def parallel_run(run_id: str, lrs: tuple[float, ...]) -> RunLog:
    """A run whose ``search`` step runs one branch per learning rate, each training."""
    attempt = {"attempt_number": 1, "status": "SUCCESS", "start_time": "2025-03-01 10:00:00.000000",
               "end_time": "2025-03-01 10:00:30.250000"}

    def task(internal: str, metrics: dict) -> dict:
        return {"name": internal.rsplit(".", 1)[-1], "internal_name": internal, "status": "SUCCESS",
                "step_type": "task", "attempts": [attempt], "user_defined_metrics": metrics}

    branches = {
        f"search.lr{i}": {"internal_name": f"search.lr{i}", "status": "SUCCESS", "steps": {
            f"search.lr{i}.train": task(f"search.lr{i}.train", {"loss": {"0": lr * 10, "1": lr}}),
        }} for i, lr in enumerate(lrs)
    }
    return RunLog.model_validate({
        "run_id": run_id, "tag": "hp", "status": "SUCCESS", "parameters": {"epochs": 2},
        "steps": {
            "search": {"name": "search", "internal_name": "search", "status": "SUCCESS", "step_type": "parallel",
                       "attempts": [attempt], "branches": branches},
            "report": task("report", {"best": 0.01}),
        },
    })


def test_branches_as_child_runs(tmp_path, mlflow_server):
    uri = mlflow_server.uri
    client = MlflowClient(uri)
    db = synthetic_db(tmp_path, [parallel_run("par-1", (0.1, 0.01))])
    args = ("par-1", "--branches", "child-runs", "--experiment", "children")
    first = run_export(*args, "--format", "json", db=db, uri=uri)
    assert first.exit_code == 0, first.output
    assert [(r["outcome"], r["child_runs"], r["metric_points"]) for r in rows(first)] == [("exported", 2, 5)]
    experiment = client.get_experiment_by_name("children")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["par-1", "par-1/search.lr0", "par-1/search.lr1"]
    parent = runs["par-1"]
    assert sorted(parent.data.metrics) == ["best"]
    for name, lr in (("par-1/search.lr0", 0.1), ("par-1/search.lr1", 0.01)):
        child = runs[name]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.metrics == {"loss": lr}  # a plain name: comparable across the branches
        assert [m.value for m in sorted(client.get_metric_history(child.info.run_id, "loss"), key=lambda m: m.step)] \
            == [lr * 10, lr]

    again = run_export(*args, db=db, uri=uri)
    assert again.stdout.splitlines()[-1] == "0 runs exported, 1 skipped as already in MLflow, 0 failed; 0 metric points and 0 params sent"
    assert len(client.search_runs([experiment.experiment_id])) == 3
    verify = run_export(*args, "--verify", "--format", "nl", db=db, uri=uri)
    assert verify.exit_code == 0, verify.output
    assert [(r["run_id"], r["verdict"]) for r in rows(verify, "nl")] == [
        ("par-1", "ok"), ("par-1/search.lr0", "ok"), ("par-1/search.lr1", "ok")]
    # without the option, a run that went with child runs stays so: nothing sent, all ok
    plain = run_export("par-1", "--format", "json", db=db, uri=uri)
    assert [(r["outcome"], r["child_runs"], r["metric_points"]) for r in rows(plain)] == [("skipped", 2, 0)]
    plain = run_export("par-1", "--verify", "--format", "nl", db=db, uri=uri)
    assert [r["verdict"] for r in rows(plain, "nl")] == ["ok", "ok", "ok"]
    # what MLflow holds and the index does not is a difference too
    client.log_metric(parent.info.run_id, "stray", 1.0)
    stray = run_export(*args, "--verify", "--format", "nl", db=db, uri=uri)
    assert stray.exit_code == 1
    assert rows(stray, "nl")[0]["verdict"] == "differs" and "metric stray (not in runlog)" in stray.stdout


def test_map_branch_gets_its_iterate_value_as_a_param(fixture_db):
    result = run_export("case4-branches-chunked", "--branches", "child-runs", "--dry-run", "--format", "json",
                        db=fixture_db)
    assert result.exit_code == 0, result.output
    assert [(r["run_id"], r["metric_points"], r["params"]) for r in rows(result)] == [
        ("case4-branches-chunked", 1, 6),
        ("case4-branches-chunked/parallel_step.branch1", 1, 1),
        ("case4-branches-chunked/parallel_step.branch2", 1, 0),
        ("case4-branches-chunked/map_step.1", 1, 1),
        ("case4-branches-chunked/map_step.2", 1, 1),
        ("case4-branches-chunked/map_step.3", 1, 1),
    ]
    from runlog.mlflow.branches import plan_runs

    plan = plan_runs(fixture_db, "case4-branches-chunked", child_runs=True)
    assert [(c.params, [m.key for m in c.metrics]) for c in plan.children[2:]] == [
        ({"chunk": "1"}, ["chunk_score"]), ({"chunk": "2"}, ["chunk_score"]), ({"chunk": "3"}, ["chunk_score"])]


DRY_RUN = {
    "table": "run_id        experiment  status    metric_points  metrics  params  tags  renamed  truncated\n"
             "------------  ----------  --------  -------------  -------  ------  ----  -------  ---------\n"
             "case1-simple  study       FINISHED              0        0       2    11        0          0\n",
    "json": json.dumps([{"run_id": "case1-simple", "experiment": "study", "status": "FINISHED", "metric_points": 0,
                         "metrics": 0, "params": 2, "tags": 11, "renamed": 0, "truncated": 0}], indent=2) + "\n",
    "csv": "run_id,experiment,status,metric_points,metrics,params,tags,renamed,truncated\n"
           "case1-simple,study,FINISHED,0,0,2,11,0,0\n",
    "tsv": "run_id\texperiment\tstatus\tmetric_points\tmetrics\tparams\ttags\trenamed\ttruncated\n"
           "case1-simple\tstudy\tFINISHED\t0\t0\t2\t11\t0\t0\n",
    "nl": '{"run_id": "case1-simple", "experiment": "study", "status": "FINISHED", "metric_points": 0, "metrics": 0, '
          '"params": 2, "tags": 11, "renamed": 0, "truncated": 0}\n',
}


@pytest.mark.parametrize("fmt", DRY_RUN)
def test_dry_run_report_in_every_format(fixture_db, fmt):
    result = run_export("case1-simple", "--dry-run", "--format", fmt, db=fixture_db)
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, DRY_RUN[fmt], "dry run: 1 run would be exported; MLflow was not contacted\n")


def test_dry_run_counts_runs_in_words(fixture_db):
    every = run_export("--all", "--dry-run", "--format", "csv", "--no-headers", db=fixture_db)
    assert (every.stdout.count("\n"), every.stderr) == (6, "dry run: 6 runs would be exported; MLflow was not contacted\n")


def test_verify_is_not_combined_with_sending_options(fixture_db):
    result = run_export("--all", "--verify", "--replace", db=fixture_db, uri="http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "--verify sends nothing: leave out --dry-run, --copy and --replace" in result.output
