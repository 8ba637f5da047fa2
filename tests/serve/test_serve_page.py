"""The page at `/` in a real headless Chromium: ask, watch the columns, get the answer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.serve.test_serve import write_config
from tests.serve_process import Server, running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
)
ARTIFACTS = REPO_ROOT / "logs" / "test-artifacts"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {"MOA_LOCAL_HOME": str(tmp_path / "home")}
    with running_server(write_config(tmp_path / "page"), env=env) as running:
        yield running


def test_the_page_shows_each_layer_and_the_answer(server: Server) -> None:
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(server.url + "/")
            page.wait_for_selector("#model option[value='moa']", state="attached")
            page.fill("#prompt", "Why is the sky blue?")
            page.click("#submit")
            answer = page.locator("#answer .text")
            playwright_api.expect(answer).to_have_text(
                "[agg t=0.70 refs=2] Why is the sky blue?", timeout=20_000
            )
            # two layers, each with a column per proposer holding its answer
            assert page.locator(".layer").count() == 2
            for layer in (1, 2):
                columns = page.locator(f".layer[data-layer='{layer}'] .agent")
                assert columns.count() == 2
                assert sorted(columns.evaluate_all("n => n.map(e => e.dataset.agent)")) == [
                    "echo:a",
                    "echo:b",
                ]
                refs = "refs=0" if layer == 1 else "refs=2"
                playwright_api.expect(columns.first.locator(".text")).to_contain_text(refs)
                playwright_api.expect(columns.first.locator(".meta")).to_contain_text("tok/s")
            playwright_api.expect(page.locator("#status")).to_have_text("done")
            playwright_api.expect(page.locator("#download")).to_be_enabled()
            with page.expect_download() as download:
                page.click("#download")
            saved = Path(download.value.path())
            assert '"event": "run.done"' in saved.read_text()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
            assert not errors
        finally:
            browser.close()
