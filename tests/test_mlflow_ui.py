"""What a person sees in MLflow 3's own UI after an export: the session's MLflow server
serves it; headless Chromium (as in tests/test_browser.py) opens the exported
experiment: a runs table (not the GenAI view), its source column filled, the metric
columns there to pick."""

from __future__ import annotations

import pytest

from mlflow_server import mlflow_server  # noqa: F401  (fixture)
from test_browser import CHROMIUM, CHROMIUM_ARGS
from test_mlflow_export import run_export, synthetic_db, synthetic_run

mlflow = pytest.importorskip("mlflow", reason="the tests need full mlflow (pip install 'runlog[test]')")
from mlflow import MlflowClient  # noqa: E402

pytestmark = [
    pytest.mark.xdist_group("mlflow"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


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
        cells = "\n".join(page.locator("[role=row]").all_inner_texts())
        # The latest loss of each run (1/3 and 1/2), and the source: the run log's file.
        assert "0.333" in cells and "0.5" in cells
        assert "ui-1.json" in cells and "ui-2.json" in cells
    finally:
        page.close()
