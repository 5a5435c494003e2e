// gyges dashboard: polls /plugins.json and /graphs.json each second and redraws in place.
// Every value that comes from the daemon is shown with textContent or as an SVG attribute set
// with setAttribute, never parsed as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const HISTORY_POINTS = 60;
const COLOURS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#1098ad", "#e67700", "#495057"];

// Per plugin: the previous total and its time, and the last HISTORY_POINTS rates.
const history = new Map();
let polls = 0;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function svgElement(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
  return node;
}

function counter(plugin, name) {
  const value = plugin.counters[name];
  return typeof value === "number" ? value : 0;
}

// What "total" means for a plugin of each stage.
function total(plugin) {
  if (plugin.stage === "input") return counter(plugin, "records_total");
  if (plugin.stage === "output") return counter(plugin, "sent_total");
  return counter(plugin, "processed_total");
}

function failures(plugin) {
  return ["decode_failures_total", "encode_failures_total", "process_failures_total",
    "errors_total", "rejected_total"].reduce((sum, name) => sum + counter(plugin, name), 0);
}

function queueLag(plugin) {
  if (plugin.queue_lag_records !== null && plugin.queue_lag_records !== undefined) {
    return plugin.queue_lag_records + " records";
  }
  if (plugin.stage === "filter") {
    return counter(plugin, "ring_length") + " / " + counter(plugin, "ring_capacity") + " batches";
  }
  return "";
}

function formatNumber(value) {
  if (!Number.isFinite(value)) return "";
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString("en");
  return value.toFixed(2);
}

function sparkline(values) {
  const width = 120, height = 24;
  const svg = svgElement("svg", { width, height, class: "spark", viewBox: `0 0 ${width} ${height}` });
  const max = Math.max(1, ...values);
  const step = width / (HISTORY_POINTS - 1);
  const offset = HISTORY_POINTS - values.length;
  const points = values.map((value, index) =>
    `${((offset + index) * step).toFixed(1)},${(height - 1 - (value / max) * (height - 2)).toFixed(1)}`);
  svg.appendChild(svgElement("polyline", { points: points.join(" "), "data-rates": values.join(",") }));
  return svg;
}

// The rate over the last second or so: the total now against the oldest poll kept, which is
// the last one at least a second old (or the first poll, early on).
function updateRates(plugin, nowMs) {
  const value = total(plugin);
  let entry = history.get(plugin.name);
  if (!entry) {
    entry = { samples: [], rates: [] };
    history.set(plugin.name, entry);
  }
  entry.samples.push({ at: nowMs, total: value });
  while (entry.samples.length > 2 && entry.samples[1].at <= nowMs - 1000) entry.samples.shift();
  const oldest = entry.samples[0];
  const seconds = (nowMs - oldest.at) / 1000;
  if (seconds > 0) {
    entry.rates.push(Math.max(0, value - oldest.total) / seconds);
    if (entry.rates.length > HISTORY_POINTS) entry.rates.shift();
  }
  return entry;
}

function drawPlugins(document_) {
  const body = document.querySelector("#plugins tbody");
  const rows = document_.plugins.map((plugin) => {
    const entry = updateRates(plugin, document_.now_ms);
    const rate = entry.rates.length ? entry.rates[entry.rates.length - 1] : 0;
    const row = element("tr");
    row.setAttribute("data-plugin", plugin.name);
    row.setAttribute("data-total", String(total(plugin)));
    row.appendChild(element("td", plugin.name, "name"));
    row.appendChild(element("td", plugin.type));
    row.appendChild(element("td", plugin.delivery ? `${plugin.stage} (${plugin.delivery})` : plugin.stage));
    row.appendChild(element("td", formatNumber(total(plugin)), "number total"));
    row.appendChild(element("td", formatNumber(rate), "number rate"));
    const spark = element("td");
    spark.appendChild(sparkline(entry.rates));
    row.appendChild(spark);
    const dropped = counter(plugin, "dropped_total");
    row.appendChild(element("td", formatNumber(dropped), dropped ? "number bad" : "number"));
    const failed = failures(plugin);
    row.appendChild(element("td", formatNumber(failed), failed ? "number bad" : "number"));
    row.appendChild(element("td", queueLag(plugin), "number"));
    return row;
  });
  body.replaceChildren(...rows);
}

// One circular buffer as a line graph: one path per column, time along x.
function drawGraph(graph) {
  const width = 560, height = 180, left = 48, bottom = 18, top = 6;
  const header = graph.header || {};
  const columns = Array.isArray(header.column_info) ? header.column_info : [];
  const rowCount = graph.rows.length;
  const values = graph.rows.flat().filter((value) => value !== null);
  const max = values.length ? Math.max(...values) : 1;
  const min = values.length ? Math.min(0, ...values) : 0;
  const span = max - min || 1;
  const x = (index) => left + (rowCount > 1 ? (index / (rowCount - 1)) * (width - left - 4) : 0);
  const y = (value) => top + (1 - (value - min) / span) * (height - top - bottom);

  const box = element("div", undefined, "graph");
  box.setAttribute("data-logger", graph.logger);
  box.setAttribute("data-name", graph.name);
  box.appendChild(element("h3", `${graph.logger} — ${graph.name}`));
  const svg = svgElement("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
  svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }));
  svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
  const maxLabel = svgElement("text", { x: left - 4, y: top + 10, "text-anchor": "end" });
  maxLabel.textContent = formatNumber(max);
  const minLabel = svgElement("text", { x: left - 4, y: height - bottom, "text-anchor": "end" });
  minLabel.textContent = formatNumber(min);
  svg.append(maxLabel, minLabel);
  const seconds = Number(header.seconds_per_row) || 1;
  if (Number.isFinite(Number(header.time)) && rowCount > 0) {
    const end = new Date((Number(header.time) + (rowCount - 1) * seconds) * 1000);
    const label = svgElement("text", { x: width - 4, y: height - 4, "text-anchor": "end" });
    label.textContent = end.toISOString().slice(11, 19) + " UTC";
    svg.appendChild(label);
  }
  const legend = element("div", undefined, "legend");
  const columnCount = graph.rows.length ? graph.rows[0].length : columns.length;
  for (let column = 0; column < columnCount; column++) {
    const colour = COLOURS[column % COLOURS.length];
    const series = graph.rows.map((row) => (row[column] === undefined ? null : row[column]));
    let d = "";
    let pen = "M";
    series.forEach((value, index) => {
      if (value === null) { pen = "M"; return; }
      d += `${pen}${x(index).toFixed(1)},${y(value).toFixed(1)} `;
      pen = "L";
    });
    const info = columns[column] || {};
    const name = info.name === undefined ? `column ${column + 1}` : String(info.name);
    svg.appendChild(svgElement("path", {
      d: d.trim(), fill: "none", stroke: colour, "stroke-width": 1.5,
      "data-column": name, "data-values": series.map((value) => (value === null ? "nan" : value)).join(","),
    }));
    const key = element("span");
    const swatch = element("i");
    swatch.style.background = colour;
    key.append(swatch, document.createTextNode(info.unit ? `${name} (${info.unit})` : name));
    legend.appendChild(key);
  }
  box.append(svg, legend);
  return box;
}

function drawGraphs(document_) {
  const boxes = document_.graphs.map(drawGraph);
  document.getElementById("graphs").replaceChildren(...boxes);
  document.getElementById("no-graphs").hidden = boxes.length > 0;
  const rows = document_.terminations.slice().reverse().map((termination) => {
    const row = element("tr");
    row.appendChild(element("td", new Date(termination.at_ms).toISOString()));
    row.appendChild(element("td", termination.plugin));
    row.appendChild(element("td", termination.reason, "reason"));
    return row;
  });
  document.querySelector("#terminations tbody").replaceChildren(...rows);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const [plugins, graphs] = await Promise.all(
      ["/plugins.json", "/graphs.json"].map((path) =>
        fetch(path, { cache: "no-store" }).then((answer) => {
          if (!answer.ok) throw new Error(`${path}: ${answer.status}`);
          return answer.json();
        })));
    drawPlugins(plugins);
    drawGraphs(graphs);
    polls += 1;
    status.textContent = `updated ${new Date(plugins.now_ms).toISOString().slice(11, 19)} UTC`;
    status.setAttribute("data-polls", String(polls));
    status.className = "";
  } catch (error) {
    status.textContent = `cannot reach the daemon: ${error.message}`;
    status.className = "stale";
  }
}

poll();
setInterval(poll, 1000);
