// The dashboard's client: theme, commands (with the CSRF token), live updates over the WebSocket.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const page = document.body.dataset.page;

function text(value) { return value === null || value === undefined ? "-" : String(value); }

function cell(row, value) { const td = document.createElement("td"); td.textContent = text(value); row.appendChild(td); return td; }

function fillTable(id, items, columns, keyOf) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    if (keyOf) row.dataset.key = keyOf(item);
    for (const column of columns) cell(row, typeof column === "function" ? column(item) : item[column]);
    body.appendChild(row);
  }
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify(body || {}),
  });
  const payload = await response.json().catch(() => ({}));
  return {ok: response.ok, status: response.status, payload};
}

function describe(result) {
  const payload = result.payload;
  if (result.ok && payload.status === "pending") {
    return `${payload.command}: pending, not taken by the node yet (never runs after ${payload.expires_at})`;
  }
  if (result.ok) return `${payload.command}: ${payload.status}`;
  const detail = payload.detail;
  if (Array.isArray(detail)) return detail.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
  return payload.command ? `${payload.command}: ${text(detail)}` : text(detail);
}

// A command answered "pending" is followed until the node applies, refuses or discards it, so
// the page never leaves a command looking as if it might still run.
async function report(element, result, prefix = "") {
  element.textContent = prefix + describe(result);
  while (result.ok && result.payload.status === "pending") {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const response = await fetch(`/api/commands/${result.payload.id}`);
    const payload = await response.json().catch(() => ({}));
    const command = result.payload.command;
    result = {ok: response.ok, status: response.status, payload: Object.assign({}, payload, {command})};
    element.textContent = prefix + describe(result);
  }
  return result;
}

// The node's liveness as the server judges it (snapshot age, process): a red banner while the
// node does not answer, so a frozen page is never mistaken for a quiet market.
function showNode(node) {
  const banner = document.getElementById("node-banner");
  banner.hidden = node.alive;
  banner.textContent = node.alive ? "" : node.message;
  document.body.dataset.node = node.state;
  // The last snapshot's figures stay on screen (dimmed), but never its claim to be connected.
  document.getElementById("status")?.classList.toggle("stale", !node.alive);
  const connection = document.getElementById("connection");
  if (connection && !node.alive) connection.textContent = `unknown (node ${node.state.replace("_", " ")})`;
  document.getElementById("live").textContent = node.alive ? "live" : `node ${node.state.replace("_", " ")}`;
}

// -- theme -------------------------------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  document.getElementById("theme-toggle").textContent = theme === "dark" ? "Light theme" : "Dark theme";
  for (const chart of document.querySelectorAll(".js-plotly-plot")) Plotly.relayout(chart, themeLayout());
}

function themeLayout() {
  const style = getComputedStyle(document.documentElement);
  const color = style.getPropertyValue("--text").trim();
  const bg = style.getPropertyValue("--panel").trim();
  return {paper_bgcolor: bg, plot_bgcolor: bg, font: {color}};
}

document.getElementById("theme-toggle").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem("theme", next);
  applyTheme(next);
});
applyTheme(localStorage.getItem("theme") || "dark");

document.getElementById("logout").addEventListener("click", async () => {
  await post("/api/logout");
  window.location.href = "/login";
});

// -- dashboard ---------------------------------------------------------------------------------

function charts(snapshot) {
  const container = document.getElementById("charts");
  const layout = (title) => Object.assign({title: {text: title}, margin: {t: 30, r: 10, l: 50, b: 30}, height: 320}, themeLayout());
  for (const [instrument, bars] of Object.entries(snapshot.bars || {})) {
    const id = `chart-${instrument}`;
    let div = document.getElementById(id);
    if (!div) {
      div = document.createElement("div");
      div.id = id;
      div.className = "chart";
      container.appendChild(div);
    }
    const fills = (snapshot.fills || []).filter((f) => f.instrument_id === instrument);
    const traces = [
      {x: bars.map((b) => b[0]), y: bars.map((b) => b[4]), type: "scatter", mode: "lines", name: "close"},
    ];
    for (const side of ["BUY", "SELL"]) {
      const own = fills.filter((f) => f.side === side);
      traces.push({x: own.map((f) => f.ts), y: own.map((f) => Number(f.price)), mode: "markers", name: side.toLowerCase(),
        marker: {size: 11, symbol: side === "BUY" ? "triangle-up" : "triangle-down", color: side === "BUY" ? "#30a46c" : "#e5484d"}});
    }
    Plotly.react(div, traces, layout(instrument));
  }
  for (const strategy of snapshot.strategies || []) {
    if (!strategy.indicators || !strategy.indicators.length) continue;
    const id = `indicators-${strategy.id}`;
    let div = document.getElementById(id);
    if (!div) {
      div = document.createElement("div");
      div.id = id;
      div.className = "chart";
      container.appendChild(div);
    }
    const names = Object.keys(strategy.indicators[strategy.indicators.length - 1]).filter((k) => k !== "ts");
    const traces = names.map((name) => ({x: strategy.indicators.map((p) => p.ts), y: strategy.indicators.map((p) => p[name]),
      mode: "lines", name}));
    Plotly.react(div, traces, layout(`${strategy.id} indicators`));
  }
  const curve = snapshot.equity_curve || [];
  Plotly.react("equity-chart", [{x: curve.map((p) => p[0]), y: curve.map((p) => Number(p[1])), mode: "lines", line: {shape: "hv"}, name: "equity"}],
    layout("Equity"));
  const positions = snapshot.positions || [];
  const invested = positions.reduce((sum, p) => sum + Number(p.market_value), 0);
  const equity = Number(snapshot.equity || 0);
  Plotly.react("allocation-chart", [{type: "pie", labels: [...positions.map((p) => p.instrument_id), "cash"],
    values: [...positions.map((p) => Number(p.market_value)), Math.max(equity - invested, 0)], hole: 0.4}], layout("Allocation"));
}

function strategyRows(snapshot) {
  const body = document.querySelector("#strategies tbody");
  for (const strategy of snapshot.strategies || []) {
    let row = body.querySelector(`tr[data-strategy="${strategy.id}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.strategy = strategy.id;
      row.innerHTML = `<td class="sid"></td><td class="state"></td><td class="orders"></td><td class="open"></td>
        <td><button class="pause">Pause</button> <button class="resume">Resume</button></td><td class="progress"></td>
        <td class="params"></td>`;
      row.querySelector(".sid").textContent = strategy.id;
      row.querySelector(".pause").addEventListener("click", () => command(`/api/strategies/${strategy.id}/pause`, {}));
      row.querySelector(".resume").addEventListener("click", () => command(`/api/strategies/${strategy.id}/resume`, {}));
      const params = row.querySelector(".params");
      for (const [name, rule] of Object.entries(strategy.schema || {})) {
        const label = document.createElement("label");
        label.textContent = `${name} `;
        const input = document.createElement("input");
        input.className = "param";
        input.name = name;
        input.dataset.type = rule.type;
        input.value = text(strategy.parameters[name]);
        label.appendChild(input);
        params.appendChild(label);
        params.appendChild(document.createTextNode(" "));
      }
      if (Object.keys(strategy.schema || {}).length) {
        const apply = document.createElement("button");
        apply.className = "apply";
        apply.textContent = "Apply";
        apply.addEventListener("click", () => applyParameters(row, strategy.id));
        params.appendChild(apply);
      }
      body.appendChild(row);
    }
    row.querySelector(".state").textContent = strategy.state;
    row.querySelector(".orders").textContent = strategy.orders;
    row.querySelector(".open").textContent = strategy.open_orders;
    row.querySelector(".progress").textContent =
      Object.entries(strategy.progress || {}).map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`).join(", ");
    for (const input of row.querySelectorAll("input.param")) {
      if (document.activeElement !== input && !input.dataset.dirty) input.value = text(strategy.parameters[input.name]);
      input.oninput = () => { input.dataset.dirty = "1"; };
      input.title = `in force: ${text(strategy.parameters[input.name])}`;
    }
  }
}

function parse(input) {
  const raw = input.value.trim();
  if (input.dataset.type === "integer" || input.dataset.type === "number") return raw === "" ? raw : Number(raw);
  if (input.dataset.type === "boolean") return raw === "true";
  return raw;
}

async function applyParameters(row, strategyId) {
  const parameters = {};
  for (const input of row.querySelectorAll("input.param")) {
    if (input.dataset.dirty) parameters[input.name] = parse(input);
  }
  if (!Object.keys(parameters).length) return;
  const result = await report(document.getElementById("command-result"),
    await post(`/api/strategies/${strategyId}/parameters`, {parameters}), `${strategyId}: `);
  if (result.ok) for (const input of row.querySelectorAll("input.param")) delete input.dataset.dirty;
}

async function command(url, body) {
  return report(document.getElementById("command-result"), await post(url, body));
}

function render(snapshot) {
  const gate = snapshot.gate || {};
  const watchdog = snapshot.watchdog || {};
  document.getElementById("mode").textContent = text(snapshot.mode);
  document.getElementById("broker").textContent = text(snapshot.broker);
  document.getElementById("connection").textContent =
    `${snapshot.connected ? "connected" : "disconnected"} (broker ${watchdog.broker_connected ? "up" : "down"}, data ${watchdog.data_connected ? "up" : "down"})`;
  document.getElementById("heartbeat").textContent = text(watchdog.last_heartbeat);
  document.getElementById("market-time").textContent = text(snapshot.market_time);
  const state = document.getElementById("trading-state");
  state.textContent = text(gate.trading_state);
  state.className = `state-${gate.trading_state}`;
  document.getElementById("halt-reason").textContent =
    Object.entries(gate.holds || {}).map(([source, hold]) => `${source}: ${hold.reason}`).join("; ");
  document.getElementById("equity").textContent = text(snapshot.equity);
  document.getElementById("pnl-day").textContent = text(snapshot.pnl_day);
  document.getElementById("pnl-session").textContent = text(snapshot.pnl_session);
  const latency = snapshot.order_latency_ms;
  document.getElementById("latency").textContent = latency ? `${latency.last} / ${latency.p50} / ${latency.max}` : "-";
  const monitor = snapshot.errors || {};
  document.getElementById("errors").textContent =
    `${text(monitor.retries)} / ${text(monitor.critical_errors)} / ${text(snapshot.orders_rejected)}`;
  const alerts = Object.entries(snapshot.alerts || {});
  document.getElementById("alerts").textContent = alerts.length ? alerts.map(([k, n]) => `${k} ${n}`).join(", ") : "none";
  fillTable("positions", snapshot.positions || [], ["instrument_id", "strategy_id", "quantity", "avg_px_open", "last",
    "market_value", "unrealized_pnl", "bankroll_pct"], (p) => p.instrument_id);
  fillTable("orders", snapshot.open_orders || [], ["client_order_id", "strategy_id", "instrument_id", "side", "type",
    "quantity", "status"]);
  fillTable("fills", [...(snapshot.fills || [])].reverse().slice(0, 50), ["ts", "strategy_id", "instrument_id", "side",
    "quantity", "price", "commission"]);
  const refusals = document.getElementById("refusals");
  refusals.replaceChildren(...(gate.recent_refusals || []).slice(-10).map((r) => {
    const item = document.createElement("li");
    item.textContent = `${r.ts} ${r.order} ${r.rule}: ${r.reason}`;
    return item;
  }));
  fillTable("risk-limits", snapshot.risk_limits || [], ["key", "value", "from"]);
  strategyRows(snapshot);
  charts(snapshot);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  const live = document.getElementById("live");
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.snapshot) render(message.snapshot);
    showNode(message.node);
  };
  socket.onclose = () => { live.textContent = "offline"; setTimeout(connect, 2000); };
}

if (page === "dashboard") {
  fetch("/api/settings").then((r) => r.json()).then((data) => {
    const s = data.settings || {};
    document.getElementById("window").textContent = `${text(s.STRATEGIES)} ${text(s.TRADING_START)}-${text(s.TRADING_END)}`;
  });
  document.getElementById("kill-switch").addEventListener("click", () => { document.getElementById("kill-confirm").hidden = false; });
  document.getElementById("kill-cancel").addEventListener("click", () => { document.getElementById("kill-confirm").hidden = true; });
  document.getElementById("kill-confirm-btn").addEventListener("click", async () => {
    document.getElementById("kill-confirm").hidden = true;
    await report(document.getElementById("kill-result"), await post("/api/kill-switch", {confirm: true, flatten: true}));
  });
  document.getElementById("kill-reset").addEventListener("click", async () => {
    await report(document.getElementById("kill-result"), await post("/api/kill-switch/reset", {}));
  });
  connect();
}

// -- other pages -------------------------------------------------------------------------------

async function getJson(url) { return (await fetch(url)).json(); }

if (page === "logs") {
  // The backlog from /api/logs, then the live tail over /ws/logs with the same filter; the
  // newest lines stay in view and the page keeps the last KEEP lines.
  const KEEP = 2000;
  const output = document.getElementById("log-lines");
  const status = document.getElementById("log-tail");
  let tail = null;
  const append = (lines) => {
    const all = output.textContent ? output.textContent.split("\n").concat(lines) : lines;
    output.textContent = all.slice(-KEEP).join("\n");
    window.scrollTo(0, document.body.scrollHeight);
  };
  const show = async () => {
    if (tail) { tail.onclose = null; tail.close(); }
    const query = `level=${encodeURIComponent(document.getElementById("log-level").value)}` +
      `&strategy=${encodeURIComponent(document.getElementById("log-strategy").value)}`;
    const data = await getJson(`/api/logs?${query}`);
    output.textContent = "";
    append(data.lines);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    tail = new WebSocket(`${scheme}://${location.host}/ws/logs?${query}`);
    tail.onopen = () => { status.textContent = "following"; };
    tail.onmessage = (event) => append(JSON.parse(event.data).lines);
    tail.onclose = () => { status.textContent = "not following (reconnecting)"; setTimeout(show, 2000); };
  };
  document.getElementById("log-refresh").addEventListener("click", show);
  show();
}
if (page === "settings") {
  getJson("/api/settings").then((data) => fillTable("settings", Object.entries(data.settings).map(([k, v]) => ({k, v})), ["k", "v"]));
  document.getElementById("setting-save").addEventListener("click", async () => {
    const key = document.getElementById("setting-key").value.trim();
    const changes = {[key]: document.getElementById("setting-value").value};
    let result = await post("/api/settings", {changes});
    // Exposing the dashboard beyond this machine is saved only once the operator confirms it.
    const exposure = result.status === 409 && Array.isArray(result.payload.detail)
      && result.payload.detail[0].type === "confirmation_required";
    if (exposure && window.confirm(result.payload.detail[0].msg.split(";")[0] + ". Save it?")) {
      result = await post("/api/settings", {changes, confirm_exposure: true});
    }
    document.getElementById("setting-result").textContent =
      result.ok ? `saved ${result.payload.saved.join(", ")} (${result.payload.applies})` : describe(result);
  });
}
if (page === "deals") {
  getJson("/api/deals").then((data) => fillTable("deals", data.deals, ["symbol", "strategy", "side", "quantity",
    "entry_price", "exit_price", "net_pnl", "exit_reason"]));
}
if (page === "backtests") {
  getJson("/api/backtests").then((data) => {
    const list = document.getElementById("backtests");
    for (const name of data.results) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/backtests/${encodeURIComponent(name)}/report.html`;
      link.textContent = name;
      item.appendChild(link);
      list.appendChild(item);
    }
  });
}
if (page === "docs") {
  getJson("/openapi.json").then((spec) => {
    const rows = [];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) rows.push({method: method.toUpperCase(), path, what: op.description || op.summary || ""});
    }
    fillTable("api-routes", rows, ["method", "path", "what"]);
  });
}
