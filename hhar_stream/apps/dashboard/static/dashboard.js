"use strict";
// The dashboard page: draws what the server pushes (the page's content as JSON, one
// server-sent event per new version). The browser's EventSource reconnects by itself.

window.hhar = { loadedAt: Date.now(), pages: 0, version: null, connected: false };

const figures = new Map(); // panel id -> JSON of the figure drawn, to skip unchanged redraws

function make(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function setConnection(connected) {
  window.hhar.connected = connected;
  const pill = document.getElementById("connection");
  pill.textContent = connected ? "live" : "reconnecting to the dashboard…";
  pill.className = "pill " + (connected ? "live" : "down");
  document.getElementById("alert-connection")?.remove();
  if (!connected) {
    const alert = make("div", { class: "alert error", id: "alert-connection" },
      "Lost the connection to the dashboard server; the page reconnects by itself " +
      "and shows the last results it had until then.");
    document.getElementById("alerts").prepend(alert);
  }
}

function renderAlerts(alerts) {
  const box = document.getElementById("alerts");
  for (const old of box.querySelectorAll(".alert.feed")) old.remove();
  for (const alert of alerts) {
    box.append(make("div", { class: `alert feed ${alert.level}` }, alert.text));
  }
}

function renderCards(cards) {
  const box = document.getElementById("cards");
  for (const card of cards) {
    let node = document.getElementById(`card-${card.id}`);
    if (!node) {
      node = make("div", { class: "card", id: `card-${card.id}` });
      node.append(make("div", { class: "label" }), make("div", { class: "value" }),
                  make("div", { class: "detail" }));
      box.append(node);
    }
    node.querySelector(".label").textContent = card.label;
    node.querySelector(".value").textContent = card.value;
    node.querySelector(".detail").textContent = card.detail;
  }
}

function renderTable(holder, table) {
  const element = make("table");
  const head = make("tr");
  for (const column of table.columns) head.append(make("th", {}, column));
  const thead = make("thead");
  thead.append(head);
  element.append(thead);
  const body = make("tbody");
  for (const row of table.rows) {
    const line = make("tr");
    for (const cell of row) line.append(make("td", {}, cell));
    body.append(line);
  }
  element.append(body);
  holder.replaceChildren(element);
}

function panelNode(panel, before) {
  let node = document.getElementById(`panel-${panel.id}`);
  if (node) return node;
  node = make("section", { class: `panel ${panel.kind}${panel.wide ? " wide" : ""}`,
                           id: `panel-${panel.id}` });
  node.append(make("h2", { id: `title-${panel.id}` }));
  node.append(make("div", { class: "note", id: `note-${panel.id}` }));
  if (panel.kind === "chart") {
    node.append(make("div", { class: "chart", id: `chart-${panel.id}` }));
    if (panel.table) {
      const details = make("details");
      details.append(make("summary", { id: `summary-${panel.id}` }, "rows"));
      details.append(make("div", { class: "table-scroll", id: `table-${panel.id}` }));
      node.append(details);
    }
  } else {
    node.append(make("div", { class: "table-scroll", id: `table-${panel.id}` }));
  }
  document.getElementById("panels").insertBefore(node, before);
  return node;
}

function renderPanel(panel, node) {
  document.getElementById(`title-${panel.id}`).textContent = panel.title;
  const rows = panel.table ? panel.table.rows.length : 0;
  const empty = panel.kind === "chart" ? !panel.figure : rows === 0;
  const note = document.getElementById(`note-${panel.id}`);
  note.textContent = empty ? panel.note : "";
  note.hidden = !empty;
  if (panel.kind === "chart") {
    const chart = document.getElementById(`chart-${panel.id}`);
    chart.hidden = empty;
    const drawn = empty ? null : JSON.stringify(panel.figure);
    if (drawn !== figures.get(panel.id)) {
      figures.set(panel.id, drawn);
      if (empty) Plotly.purge(chart);
      else Plotly.react(chart, panel.figure.data, panel.figure.layout,
                        { responsive: true, displaylogo: false });
    }
    if (panel.table) {
      document.getElementById(`summary-${panel.id}`).textContent = `rows (${rows})`;
    }
  }
  if (panel.table) {
    const holder = document.getElementById(`table-${panel.id}`);
    renderTable(holder, panel.table);
    if (panel.kind === "table") holder.hidden = empty;
  }
}

function render(page) {
  document.getElementById("updated").textContent = `updated ${page.updated} UTC`;
  const link = document.getElementById("spark-ui");
  link.hidden = !page.spark_ui;
  document.getElementById("spark-ui-off").hidden = Boolean(page.spark_ui);
  if (page.spark_ui) link.href = page.spark_ui;
  renderAlerts(page.alerts);
  renderCards(page.cards);
  let next = null;
  for (const panel of [...page.panels].reverse()) {
    const node = panelNode(panel, next);
    renderPanel(panel, node);
    next = node;
  }
}

const events = new EventSource("/events");
events.addEventListener("open", () => setConnection(true));
events.addEventListener("error", () => setConnection(false));
events.addEventListener("page", (event) => {
  render(JSON.parse(event.data));
  window.hhar.pages += 1;
  window.hhar.version = Number(event.lastEventId);
  if (!window.hhar.connected) setConnection(true);
});
