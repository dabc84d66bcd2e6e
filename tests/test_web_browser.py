"""
Browser flows with Playwright driving Debian's chromium against a replay-fed paper node
(run_live.py, replay broker, sandbox fills) and the dashboard (python -m web), both real
processes on loopback: log in; pause a strategy before its first trade and see its buy
refused by the gate (nothing reaches the venue) while the other trades; see a fill appear in
the positions table and the chart extend over the WebSocket; trigger the kill switch (with its confirmation) and see HALTED and flat;
reset it; change a running strategy's period (a refused value names the field; a valid one is
in force); the light/dark toggle. Every control action is in the journal with who did it.
Then a kill switch sent while the node is frozen expires and never runs when it wakes, and the
node is killed (kill -9): the page shows it as not responding and refuses the kill switch.
Screenshots go to test_artifacts/web/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.replay_dashboard import replay_dashboard

playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test_artifacts" / "web"
DAY = "2024-12-16"  # MA cross buys SPY and QQQ at 14:40 UTC and holds SPY until 18:40 UTC
USER, PASSWORD = "trader", "browser-test-password"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def live(sample_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Debian chromium not installed at /usr/bin/chromium")
        pytest.skip("Debian chromium not installed at /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("web_browser")
    # A node that misses snapshots for 30 s counts as hung (here it is caught by its pid first),
    # and a dashboard command expires after 3 s: the hung-node flow below stays short.
    timing = {"WEB_NODE_STALE_SECONDS": "30", "WEB_COMMAND_EXPIRY_SECONDS": "3"}
    with replay_dashboard(sample_catalog, tmp, DAY, "x400", USER, PASSWORD, settings=timing) as stack:
        yield {"url": stack.url, "state": stack.state, "node": stack.node, "tmp": tmp}


@pytest.fixture(scope="module")
def browser(live: dict) -> Iterator:
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            user_data_dir=str(live["tmp"] / "chromium-profile"), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1800},
        )
        try:
            yield context
        finally:
            context.close()


def snapshot(state: Path) -> dict:
    return json.loads((state / "control" / "state.json").read_text())


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_dashboard_flows_against_a_replayed_paper_node(live: dict, browser) -> None:
    page = browser.new_page()
    page.set_default_timeout(20_000)
    # The Content-Security-Policy (no inline script) must not refuse anything the pages use.
    # (Predicates below are functions: a string expression would be run by eval, which it refuses.)
    csp_refusals: list[str] = []
    page.on("console", lambda m: csp_refusals.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live['url']}/")
    assert page.url.endswith("/login")  # no session: to the login page
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_url(f"{live['url']}/")
    page.wait_for_selector('#strategies tr[data-strategy="MACross-QQQ"]', timeout=60_000)
    assert page.get_attribute("html", "data-theme") == "dark"
    shot(page, "01_logged_in")

    # Pause QQQ before the 14:40 cross that buys both symbols.
    assert snapshot(live["state"])["market_time"] < f"{DAY}T14:30"
    page.click('#strategies tr[data-strategy="MACross-QQQ"] button.pause')
    page.wait_for_selector('#strategies tr[data-strategy="MACross-QQQ"] td.state:text("PAUSED")')

    # A fill appears in the positions table, and the price chart extends over the WebSocket.
    page.wait_for_selector('#positions tr[data-key="SPY.SIM"]', timeout=90_000)
    row = page.inner_text('#positions tr[data-key="SPY.SIM"]')
    assert "MACross-SPY" in row
    points = page.evaluate("document.getElementById('chart-SPY.SIM').data[0].x.length")
    page.wait_for_function(f"() => document.getElementById('chart-SPY.SIM').data[0].x.length > {points}")
    assert page.evaluate("document.getElementById('chart-SPY.SIM').data[1].x.length") >= 1  # buy marker
    shot(page, "02_position_and_chart")

    # The kill switch: a confirmation step, then halted and flat.
    page.click("#kill-switch")
    assert page.is_visible("#kill-confirm")
    page.click("#kill-confirm-btn")
    page.wait_for_selector("#trading-state:text('HALTED')")
    page.wait_for_function("() => document.querySelectorAll('#positions tbody tr').length === 0")
    halted = snapshot(live["state"])
    assert halted["positions"] == [] and halted["gate"]["trading_state"] == "HALTED"
    shot(page, "03_halted_and_flat")
    page.click("#kill-reset")
    page.wait_for_selector("#trading-state:text('ACTIVE')")

    # A parameter change: refused values name the field, a valid one is in force.
    spy = '#strategies tr[data-strategy="MACross-SPY"]'
    assert live["node"].poll() is None, "the replay ended before the parameter change"
    page.fill(f"{spy} input[name=fast_period]", "40")
    page.click(f"{spy} button.apply")
    page.wait_for_selector("#command-result:has-text('fast_period')")
    assert "must be less than slow_period" in page.inner_text("#command-result")
    page.fill(f"{spy} input[name=fast_period]", "5")
    page.click(f"{spy} button.apply")
    page.wait_for_selector("#command-result:has-text('set_parameters: done')")
    page.wait_for_function(
        "() => document.querySelector('#strategies tr[data-strategy=\"MACross-SPY\"] input[name=fast_period]')"
        ".title === 'in force: 5'")
    assert json.loads((live["state"] / "parameters.json").read_text()) == {"MACross-SPY": {"fast_period": 5}}

    # The paused strategy's buy on the 14:40 cross was refused by the gate (nothing reached the
    # venue) while SPY traded (its buy, then the kill switch's exit).
    final = snapshot(live["state"])
    strategies = {s["id"]: s for s in final["strategies"]}
    assert strategies["MACross-QQQ"]["state"] == "PAUSED" and strategies["MACross-QQQ"]["orders"] >= 1
    assert not [f for f in final["fills"] if f["strategy_id"] == "MACross-QQQ"]
    refused = [r for r in final["gate"]["recent_refusals"] if r["order"].endswith("-QQQ-1")]
    assert [r["rule"] for r in refused] == ["strategy_paused"]
    assert strategies["MACross-SPY"]["orders"] >= 2
    latency = snapshot(live["state"])["order_latency_ms"]
    assert latency["samples"] >= 2 and 0 <= latency["p50"] <= latency["max"]
    assert page.inner_text("#latency").count("/") == 2
    assert strategies["MACross-SPY"]["parameters"]["fast_period"] == 5
    # The averages on_bar reads are the new ones, warmed up from the cached bars.
    assert strategies["MACross-SPY"]["indicators_in_use"] == {
        "fast": "ExponentialMovingAverage(5)", "slow": "ExponentialMovingAverage(30)",
    }

    # Light/dark toggle.
    page.click("#theme-toggle")
    assert page.get_attribute("html", "data-theme") == "light"
    shot(page, "04_light_theme")
    page.click("#theme-toggle")
    assert page.get_attribute("html", "data-theme") == "dark"

    assert csp_refusals == []

    # Every control action is in the journal with who did it.
    with sqlite3.connect(live["state"] / "journal_paper.sqlite") as db:
        rows = db.execute("SELECT source, detail FROM risk_events WHERE kind = 'control' ORDER BY id").fetchall()
    assert [source for source, _ in rows] == [f"operator:{USER} (web)"] * 4
    assert [detail.split(":")[0] for _, detail in rows] == ["pause_strategy", "flatten", "resume", "set_parameters"]


def logged_in_page(live: dict, browser):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live['url']}/")
    if page.url.endswith("/login"):
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("#login-btn")
        page.wait_for_url(f"{live['url']}/")
    page.wait_for_selector("#live:text('live')", timeout=60_000)
    return page


def test_a_kill_switch_sent_to_a_hung_node_never_runs_late(live: dict, browser) -> None:
    """The node's process is frozen (SIGSTOP) just before the kill switch: the page reports the
    command expired, and when the node wakes it discards the command instead of flattening."""
    page = logged_in_page(live, browser)
    assert live["node"].poll() is None, "the replay ended before the hung-node flow"
    assert page.inner_text("#trading-state") == "ACTIVE"
    rejected = live["state"] / "control" / "rejected"
    before = set(rejected.glob("*.reason"))
    os.kill(live["node"].pid, signal.SIGSTOP)
    try:
        page.click("#kill-switch")
        page.click("#kill-confirm-btn")
        page.wait_for_selector("#kill-result:has-text('flatten: not run: expired')")
        assert "it will never run" in page.inner_text("#kill-result")
    finally:
        os.kill(live["node"].pid, signal.SIGCONT)
    # Awake, the node takes the command from its inbox and discards it with the reason.
    for _ in range(600):
        new = set(rejected.glob("*.reason")) - before
        if new:
            break
        page.wait_for_timeout(100)
    [reason_file] = new
    assert reason_file.read_text().startswith("expired: flatten by trader (web) sent ")
    control = live["state"] / "control"
    assert not (control / "done" / f"{reason_file.stem}.json").exists()
    assert not (control / "taken" / f"{reason_file.stem}.json").exists()
    assert snapshot(live["state"])["gate"]["trading_state"] == "ACTIVE"  # never halted
    shot(page, "05_expired_kill_switch")


def test_a_killed_node_is_shown_as_not_responding(live: dict, browser) -> None:
    """After the flows above: kill -9 the node. The page turns red, /health answers 503 and the
    kill switch is refused instead of waiting in the inbox for a node that may come back."""
    import urllib.error
    import urllib.request

    page = logged_in_page(live, browser)
    assert page.is_hidden("#node-banner")
    live["node"].kill()
    live["node"].wait(10)
    page.wait_for_selector("#node-banner:has-text('node not responding since')")
    assert page.inner_text("#live") == "node not responding"
    assert page.inner_text("#connection") == "unknown (node not responding)"
    with pytest.raises(urllib.error.HTTPError) as health:
        urllib.request.urlopen(f"{live['url']}/health", timeout=5)
    assert health.value.code == 503
    assert json.loads(health.value.read())["node"] == "not_responding"
    page.click("#kill-switch")
    page.click("#kill-confirm-btn")
    page.wait_for_selector("#kill-result:has-text('flatten not sent: node not responding since')")
    assert not list((live["state"] / "control" / "inbox").glob("*.json"))
    shot(page, "06_node_not_responding")
