"""What a person sees in MLflow 3's own UI after an export: the session's MLflow server
serves it; headless Chromium (tests/browser.py) opens the exported
experiment: a runs table (not the GenAI view), its source column filled, the metric
columns there to pick."""

from __future__ import annotations

import pytest

from browser import browser  # noqa: F401  (fixture)
from mlflow_server import mlflow_server  # noqa: F401  (fixture)
from test_mlflow_export import run_export, synthetic_db, synthetic_run

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog-store[test]')")
from mlflow import MlflowClient  # noqa: E402

pytestmark = pytest.mark.xdist_group("mlflow")


def test_exported_experiment_opens_as_a_runs_table_with_metric_columns(tmp_path, mlflow_server, browser):
    db = synthetic_db(tmp_path, [synthetic_run("ui-1", "t", 3), synthetic_run("ui-2", "t", 2)])
    assert run_export("--all", "--experiment", "ui-runs", db=db, uri=mlflow_server.uri).exit_code == 0
    experiment = MlflowClient(mlflow_server.uri).get_experiment_by_name("ui-runs")
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    try:
        page.goto(f"{mlflow_server.uri}/#/experiments/{experiment.experiment_id}/runs")
        page.wait_for_selector("text=ui-2", timeout=60_000)
        assert page.get_by_text("Training runs").count() >= 1
        page.get_by_role("button", name="Columns").click()
        menu = page.locator("[role=menu], [role=dialog], [role=listbox]").first
        assert "Metrics (4)" in menu.inner_text()  # loss, acc, evaluate/loss, report.f1
        menu.get_by_text("loss", exact=True).click()
        page.keyboard.press("Escape")
        page.locator("[role=columnheader]", has_text="loss").first.wait_for(timeout=30_000)
        # MLflow draws the pinned name column and the other columns as separate rows, in one order.
        filled = [cells for cells in (row.locator("[role=gridcell]").all_inner_texts()
                                      for row in page.locator("[role=row]").all()) if cells]
        names = [cells[1].splitlines()[-1] for cells in filled if cells[0] == "Pin run"]
        columns = [cells for cells in filled if cells[0] != "Pin run"]
        # Each exported run: its duration (10:00:00 to 10:05:30.25), its source (the run
        # log's file) and its latest loss (1/3 and 1/2); no dataset and no model ("-").
        assert dict(zip(names, columns)) == {
            "ui-1": ["-", "5.5min", "ui-1.json", "-", "0.3333333333333333"],
            "ui-2": ["-", "5.5min", "ui-2.json", "-", "0.5"],
        }
    finally:
        page.close()
