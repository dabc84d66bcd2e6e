"""
The dashboard's HTML: one shell (navigation, theme toggle, the CSRF token for scripts) around
each page's body. Pages fill themselves from the API and the WebSocket (static/dashboard.js).
"""

from __future__ import annotations

from html import escape

from web.auth import Session

PAGES = {
    "dashboard": "Dashboard",
    "logs": "Logs",
    "settings": "Settings",
    "deals": "Deals",
    "backtests": "Backtests",
    "docs": "API docs",
}

BODIES = {
    "dashboard": """
<section class="cards" id="status">
  <div class="card"><h3>Mode</h3><span id="mode">-</span> / <span id="broker">-</span></div>
  <div class="card"><h3>Connection</h3><span id="connection">-</span></div>
  <div class="card"><h3>Heartbeat</h3><span id="heartbeat">-</span></div>
  <div class="card"><h3>Market time</h3><span id="market-time">-</span></div>
  <div class="card"><h3>Strategies / window (ET)</h3><span id="window">-</span></div>
  <div class="card"><h3>Risk state</h3><span id="trading-state">-</span><div id="halt-reason" class="muted"></div></div>
  <div class="card"><h3>Equity</h3><span id="equity">-</span></div>
  <div class="card"><h3>P&amp;L day / session</h3><span id="pnl-day">-</span> / <span id="pnl-session">-</span></div>
  <div class="card"><h3>Order latency (ms, last / p50 / max)</h3><span id="latency">-</span></div>
  <div class="card"><h3>Retries / critical errors / rejected</h3><span id="errors">-</span></div>
  <div class="card"><h3>Alerts</h3><span id="alerts">-</span></div>
</section>
<section class="panel" id="kill-panel">
  <h2>Kill switch</h2>
  <button id="kill-switch" class="danger">Kill switch: halt and flatten</button>
  <span id="kill-confirm" hidden>
    <strong>Halt all trading and close every position?</strong>
    <button id="kill-confirm-btn" class="danger">Confirm</button>
    <button id="kill-cancel">Cancel</button>
  </span>
  <button id="kill-reset">Reset (resume trading)</button>
  <span id="kill-result" class="muted"></span>
</section>
<section class="panel"><h2>Strategies</h2>
  <table id="strategies"><thead><tr><th>Strategy</th><th>State</th><th>Orders</th><th>Open</th>
  <th>Control</th><th>Progress</th><th>Parameters</th></tr></thead><tbody></tbody></table>
  <div id="command-result" class="muted"></div>
</section>
<section class="panel"><h2>Positions</h2>
  <table id="positions"><thead><tr><th>Instrument</th><th>Strategy</th><th>Quantity</th><th>Avg open</th>
  <th>Last</th><th>Value</th><th>Unrealized</th><th>% bankroll</th></tr></thead><tbody></tbody></table>
</section>
<section class="panel"><h2>Open orders</h2>
  <table id="orders"><thead><tr><th>Order</th><th>Strategy</th><th>Instrument</th><th>Side</th><th>Type</th>
  <th>Qty</th><th>Status</th></tr></thead><tbody></tbody></table>
</section>
<section class="panel"><h2>Recent fills</h2>
  <table id="fills"><thead><tr><th>Time</th><th>Strategy</th><th>Instrument</th><th>Side</th><th>Qty</th>
  <th>Price</th><th>Commission</th></tr></thead><tbody></tbody></table>
</section>
<section class="panel"><h2>Charts</h2><div id="charts"></div>
  <div class="row"><div id="equity-chart" class="chart"></div><div id="allocation-chart" class="chart"></div></div>
</section>
<section class="panel"><h2>Gate refusals</h2><ul id="refusals"></ul></section>
<section class="panel"><h2>Risk limits in force</h2>
  <table id="risk-limits"><thead><tr><th>Setting</th><th>Value</th><th>From</th></tr></thead><tbody></tbody></table>
</section>
""",
    "logs": """
<section class="panel"><h2>Logs</h2>
  <label>Level <select id="log-level"><option value="">all</option><option value="DEBUG">DEBUG and above</option>
  <option value="INFO">INFO and above</option><option value="WARN">WARN and above</option>
  <option value="ERROR">ERROR</option></select></label>
  <label>Strategy <input id="log-strategy" placeholder="e.g. MACross-SPY"></label>
  <button id="log-refresh">Show</button> <span id="log-tail" class="muted">not following</span>
  <pre id="log-lines"></pre>
</section>""",
    "settings": """
<section class="panel"><h2>Settings of this run</h2>
  <p class="muted">Secrets are masked. Strategy parameters are changed on the dashboard (validated by
  the strategy's config, applied to the running strategy and persisted for the next start). A
  setting saved here is validated with the config schema and written to the env file; the node
  reads it at its next start.</p>
  <p><label>Key <input id="setting-key" placeholder="e.g. MAX_OPEN_POSITIONS"></label>
  <label>Value <input id="setting-value"></label> <button id="setting-save">Validate and save</button>
  <span id="setting-result" class="muted"></span></p>
  <table id="settings"><thead><tr><th>Key</th><th>Value</th></tr></thead><tbody></tbody></table>
</section>""",
    "deals": """
<section class="panel"><h2>Deals (the journal's round trips)</h2>
  <table id="deals"><thead><tr><th>Symbol</th><th>Strategy</th><th>Side</th><th>Qty</th><th>Entry</th>
  <th>Exit</th><th>Net P&amp;L</th><th>Exit reason</th></tr></thead><tbody></tbody></table>
</section>""",
    "backtests": """
<section class="panel"><h2>Backtest results</h2><ul id="backtests"></ul></section>""",
    "docs": """
<section class="panel"><h2>API</h2>
  <p class="muted">Send the session cookie with the X-CSRF-Token header, or
  <code>Authorization: Bearer &lt;token&gt;</code> with the token POST /api/login returns.
  The machine-readable schema is at <a href="/openapi.json">/openapi.json</a>.</p>
  <table id="api-routes"><thead><tr><th>Method</th><th>Path</th><th>What it does</th></tr></thead><tbody></tbody></table>
</section>""",
}


def page(name: str, who: Session) -> str:
    nav = " ".join(
        f'<a href="{"/" if key == "dashboard" else "/docs" if key == "docs" else f"/page/{key}"}"'
        f'{" class=\"active\"" if key == name else ""}>{label}</a>'
        for key, label in PAGES.items()
    )
    return f"""<!doctype html>
<html lang="en" data-theme="dark"><head><meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<meta name="csrf-token" content="{escape(who.csrf)}">
<title>{PAGES[name]} - nautilus-equities</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/plotly.min.js"></script>
</head><body data-page="{name}">
<header><strong>nautilus-equities</strong> <nav>{nav}</nav>
<span class="right"><button id="theme-toggle" title="light / dark">Light theme</button>
<span class="muted">{escape(who.user)}</span> <button id="logout">Log out</button>
<span id="live" class="muted">offline</span></span></header>
<div id="node-banner" class="banner" role="alert" hidden></div>
<main>{BODIES[name]}</main>
<script src="/static/dashboard.js"></script>
</body></html>"""


def login_page() -> str:
    return """<!doctype html>
<html lang="en" data-theme="dark"><head><meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<title>Log in - nautilus-equities</title>
<link rel="stylesheet" href="/static-login/style.css">
</head><body><main class="login">
<h1>nautilus-equities</h1>
<form id="login-form">
<label>User <input id="username" autocomplete="username" required></label>
<label>Password <input id="password" type="password" autocomplete="current-password" required></label>
<button id="login-btn" type="submit">Log in</button>
<p id="login-error" class="error"></p>
</form></main>
<script src="/static-login/login.js"></script>
</body></html>"""
