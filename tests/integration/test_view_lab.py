"""`dnabox view` on the lab in a real browser (Debian's chromium driven by Playwright).

Every wait is on the page's own DOM or on the server's output, never on a timer: the
fleet page shows each box's real state; a dropped fingerprint shows as pending after a
refresh; a `dnabox up` started during the test is followed live to its end; a view bound
beyond loopback refuses requests without its token.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
DNABOX = (sys.executable, "-m", "dnabox")
FINGERPRINTS = "/var/lib/dnabox/fingerprints.json"
CHROMIUM = shutil.which("chromium")


class ViewProcess:
    def __init__(self, lab: Lab, *args: str) -> None:
        self.process = subprocess.Popen(
            [*DNABOX, "view", "-i", str(lab.inventory), "--port", "0", *args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        self.url = ""
        self.token = ""
        for line in self.process.stderr:  # the server prints its address once it listens
            if found := re.search(r"(http://\S+/)$", line.strip()):
                self.url = found.group(1)
            if found := re.search(r"\?token=(\S+)$", line.strip()):
                self.token = found.group(1)
            if line.startswith("Ctrl-C"):
                break
        assert self.url, "the view never said where it listens"
        # Keep reading its stderr, so a chatty server never blocks on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def converged(lab: Lab) -> Lab:
    first = lab.cli("up", "-i", str(lab.inventory), "--json", timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return lab


@pytest.fixture
def view(converged: Lab) -> Iterator[ViewProcess]:
    running = ViewProcess(converged)
    yield running
    running.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


def screenshot(page: Any, name: str) -> None:
    """For the docs: `DNABOX_SCREENSHOTS=docs/img pytest ...` keeps the pictures."""
    where = os.environ.get("DNABOX_SCREENSHOTS")
    if where:
        page.screenshot(path=str(Path(where) / name), full_page=True)


def forget_role(lab: Lab, box: str, role: str) -> None:
    lab.run(box, f"python3 -c \"import json; p='{FINGERPRINTS}'; d=json.load(open(p)); "
                 f"d['fingerprints'].pop('{role}', None); json.dump(d, open(p, 'w'))\"")


def test_the_fleet_page_follows_state_and_a_live_run(converged: Lab, view: ViewProcess,
                                                      browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(view.url)
    for box in converged.fleet.boxes:
        page.wait_for_selector(f'[data-box="{box.name}"][data-state="converged"]',
                               timeout=60_000)
    # The topology is the inventory graph, each box node coloured by its state.
    page.wait_for_selector("#topology g.node.live.state-converged", timeout=30_000)

    forget_role(converged, "edge-a-1", "cni")
    page.click("#refresh")
    page.wait_for_selector('[data-box="edge-a-1"][data-state="pending"]', timeout=60_000)
    assert page.get_attribute('[data-box="core-1"]', "data-state") == "converged"

    # Record every run status the page shows, so "live" is proven, not inferred.
    page.evaluate("""() => {
        window.runStatuses = [];
        new MutationObserver(() => {
            const s = document.getElementById('run-status');
            if (s) window.runStatuses.push(s.dataset.status);
        }).observe(document.getElementById('run-panel'), {childList: true, subtree: true});
    }""")
    run = subprocess.run([*DNABOX, "up", "-i", str(converged.inventory), "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-2000:]
    run_id = next(json.loads(line)["data"]["run"] for line in run.stdout.splitlines()
                  if '"kind": "run"' in line and '"started"' in line)
    page.wait_for_selector('#run-status[data-status="ok"]', timeout=60_000)
    assert run_id in page.inner_text("#run-panel h2")
    statuses = page.evaluate("window.runStatuses")
    assert statuses[0] == "running" and statuses[-1] == "ok", statuses
    sites = {e.get_attribute("data-site") for e in page.query_selector_all(".site-progress")}
    assert {b.site for b in converged.fleet.boxes} <= sites
    # The run changed edge-a-1: the view reads the boxes again on its own when a run ends.
    page.wait_for_selector('[data-box="edge-a-1"][data-state="converged"]', timeout=60_000)
    screenshot(page, "view-fleet-lab.png")

    page.goto(view.url + "#/box/edge-a-1")
    page.wait_for_selector('#box-roles tr[data-role="cni"][data-stale="false"]',
                           timeout=60_000)
    assert "x86_64" in page.inner_text("#box-facts") or "aarch64" in page.inner_text(
        "#box-facts")
    runs = json.loads(urllib.request.urlopen(view.url + "api/runs", timeout=30).read())
    assert runs["runs"][0]["run"] == run_id and runs["runs"][0]["status"] == "ok"


def test_a_view_beyond_loopback_refuses_requests_without_its_token(converged: Lab) -> None:
    exposed = ViewProcess(converged, "--bind", "0.0.0.0")
    try:
        assert exposed.token, "a non-loopback view prints its token once"
        # Asked on loopback: the bind, not the caller, decides that a token is needed.
        url = exposed.url.replace("0.0.0.0", "127.0.0.1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "api/fleet", timeout=30)
        assert refused.value.code == 401
        request = urllib.request.Request(url + "api/fleet",
                                         headers={"Authorization": f"Bearer {exposed.token}"})
        fleet = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert {b["name"] for b in fleet["boxes"]} == {b.name for b in converged.fleet.boxes}
    finally:
        exposed.stop()


def test_the_dna_page_shows_a_cut_site_a_growing_pond_and_the_catch_up(
        converged: Lab, view: ViewProcess, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(view.url + "#/dna")
    pond = 'tr[data-pond="edge-a:traffic"]'
    page.wait_for_selector(f'{pond}[data-cut="false"]', timeout=120_000)
    lake_before = int(page.inner_text("#lake-samples b"))
    cut = converged.cli("lab", "partition", "-i", str(converged.inventory), "--site", "edge-a")
    assert cut.returncode == 0, cut.stdout + cut.stderr
    try:
        pond_before = int(page.get_attribute(pond, "data-samples") or 0)
        published = converged.cli("dna", "publish", "-i", str(converged.inventory), "--box",
                                  "end-a-1", "--count", "300", "--json", timeout=300)
        assert published.returncode == 0, published.stdout + published.stderr
        # The hub cannot reach the pond: the page reads it at the edge, and it has grown.
        page.wait_for_function(
            """([selector, least]) => {
                const row = document.querySelector(selector);
                return row && row.dataset.cut === "true" && Number(row.dataset.samples) >= least;
            }""", arg=[pond, pond_before + 300], timeout=120_000)
        assert int(page.inner_text("#lake-samples b")) == lake_before, "nothing crossed the cut"
        page.goto(view.url + "#/")
        page.wait_for_selector('tr.cut[data-link*="edge-a"]', timeout=120_000)
        screenshot(page, "view-partition.png")
    finally:
        healed = converged.cli("lab", "heal", "-i", str(converged.inventory), "--site", "edge-a")
        assert healed.returncode == 0, healed.stdout + healed.stderr
    page.goto(view.url + "#/dna")
    page.wait_for_function(
        """([selector, lake]) => {
            const row = document.querySelector(selector);
            const total = document.querySelector("#lake-samples b");
            return row && row.dataset.cut === "false" && total
                && Number(total.textContent) === lake;
        }""", arg=[pond, lake_before + 300], timeout=180_000)
    # A model trained at the core answers at the edge: the page lists the answer, with the
    # version that gave it, read at the edge's own inference server.
    trained = converged.cli("dna", "train", "-i", str(converged.inventory), "--model", "speed",
                            "--json", timeout=400)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    version = json.loads(trained.stdout)["version"]
    def ask() -> subprocess.CompletedProcess[str]:
        return converged.cli("dna", "predict", "-i", str(converged.inventory), "--site",
                             "edge-a", "--model", "speed", "--json", timeout=120)

    def serves(answer: subprocess.CompletedProcess[str]) -> bool:
        # Until the version reaches edge-a's registry copy the server answers an older one,
        # or 503 when it holds none yet.
        return answer.returncode == 0 and json.loads(answer.stdout)["version"] >= version

    asked, deadline = ask(), time.monotonic() + 120
    while not serves(asked):
        assert time.monotonic() < deadline, f"edge-a never served v{version}: {asked.stdout}"
        asked = ask()
    served = json.loads(asked.stdout)["version"]
    page.wait_for_selector(f'#predictions tr[data-site="edge-a"][data-version="{served}"]',
                           timeout=120_000)
    screenshot(page, "view-dna.png")
