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

// Tables longer than a page (a fleet's device_activity) page and search on the server: the
// pushed content holds each table's first page; another page or a search is asked for.
const tableViews = new Map(); // panel id -> { first, search } the reader chose
const pending = new Set(); // panel ids whose page is being fetched

function tableView(id) {
  if (!tableViews.has(id)) tableViews.set(id, { first: 0, search: "" });
  return tableViews.get(id);
}

function isFirstPage(id) {
  const view = tableView(id);
  return view.first === 0 && view.search === "";
}

async function fetchPage(id) {
  if (pending.has(id)) return;
  pending.add(id);
  try {
    const view = tableView(id);
    const query = new URLSearchParams({ query: id, first: view.first, search: view.search });
    const response = await fetch(`/api/table?${query}`);
    if (!response.ok) return;
    const table = await response.json();
    if (table.search !== tableView(id).search) return; // the reader typed on
    if (table.first >= table.matched && table.first > 0) {
      view.first = Math.max(0, table.matched - table.size);
      return;
    }
    renderTableOf(id, table);
  } finally {
    pending.delete(id);
  }
}

function tableControls(id) {
  const bar = make("div", { class: "table-controls", id: `controls-${id}` });
  const search = make("input", { type: "search", placeholder: "search rows", id: `search-${id}`,
                                 "aria-label": "search the rows" });
  const previous = make("button", { type: "button", id: `previous-${id}` }, "‹ previous");
  const next = make("button", { type: "button", id: `next-${id}` }, "next ›");
  const extent = make("span", { class: "extent", id: `extent-${id}` });
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      Object.assign(tableView(id), { first: 0, search: search.value.trim() });
      fetchPage(id);
    }, 250);
  });
  previous.addEventListener("click", () => {
    const view = tableView(id);
    view.first = Math.max(0, view.first - Number(bar.dataset.size || 20));
    fetchPage(id);
  });
  next.addEventListener("click", () => {
    const view = tableView(id);
    view.first += Number(bar.dataset.size || 20);
    fetchPage(id);
  });
  bar.append(search, previous, next, extent);
  return bar;
}

function renderTableOf(id, table) {
  const holder = document.getElementById(`table-${id}`);
  if (!holder) return;
  renderTable(holder, table);
  const bar = document.getElementById(`controls-${id}`);
  if (!bar || table.matched === undefined) return;
  bar.dataset.size = table.size;
  const paged = table.matched > table.size || tableView(id).search !== "";
  bar.hidden = !paged;
  document.getElementById(`previous-${id}`).disabled = table.first === 0;
  document.getElementById(`next-${id}`).disabled = table.first + table.rows.length >= table.matched;
  const parts = [table.extent || `${table.matched.toLocaleString("en")} rows`];
  if (table.summary) parts.push(table.summary);
  document.getElementById(`extent-${id}`).textContent = parts.join(" · ");
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
      details.append(tableControls(panel.id));
      details.append(make("div", { class: "table-scroll", id: `table-${panel.id}` }));
      node.append(details);
    }
  } else {
    node.append(tableControls(panel.id));
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
      const matched = panel.table.matched ?? rows;
      document.getElementById(`summary-${panel.id}`).textContent =
        `rows (${matched.toLocaleString("en")})`;
    }
  }
  if (panel.table) {
    const holder = document.getElementById(`table-${panel.id}`);
    if (isFirstPage(panel.id)) renderTableOf(panel.id, panel.table);
    else fetchPage(panel.id); // the reader's page, brought up to date
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
