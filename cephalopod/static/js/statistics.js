// The statistics page: the world map, the charts and the trend view of count charts.
// A trend redraws its chart and puts the same numbers in the chart's "Data as a table".
import { api, dataOf } from "./api.js";
import { drawChart } from "./charts.js";
import { drawMap } from "./maps.js";

for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
  drawChart(canvas, dataOf(canvas, "chart"));
}
for (const element of document.querySelectorAll("[data-map]")) {
  drawMap(element, dataOf(element, "map"));
}

async function trend(field, interval, status) {
  const query = new URLSearchParams({ field, interval, status });
  return (await api(`/api/admin/statistics/trend?${query}`)).body;
}

const INTERVALS = { day: "Day", week: "Week", month: "Month" };

function trendSpec(data) {
  return {
    type: "line",
    label: data.label,
    x_label: INTERVALS[data.interval] ?? data.interval,
    y_label: "Share of instances (%)",
    percent: true,
    labels: data.periods,
    values: [],
    series: data.series.map((s) => ({ label: String(s.category), data: s.percents, fill: false })),
  };
}

// The trend as a table (text nodes only: categories are strangers' strings).
function trendTable(data) {
  const cell = (tag, text, scope) => {
    const element = document.createElement(tag);
    element.textContent = text;
    if (scope) element.scope = scope;
    return element;
  };
  const table = document.createElement("table");
  table.append(cell("caption", `${data.label}: share of instances (%) by ${data.interval}`));
  const head = table.createTHead().insertRow();
  head.append(cell("th", INTERVALS[data.interval] ?? data.interval, "col"));
  for (const s of data.series) head.append(cell("th", String(s.category), "col"));
  const body = table.createTBody();
  data.periods.forEach((period, i) => {
    const row = body.insertRow();
    row.append(cell("th", period, "row"));
    for (const s of data.series) row.append(cell("td", `${s.percents[i].toFixed(1)} %`));
  });
  return table;
}

function trendSummary(data) {
  const n = data.periods.length;
  if (!n) return "No snapshots yet: the trend grows with each day's crawl.";
  const last = data.series.map((s) => [s.category, s.percents[n - 1]]).sort((a, b) => b[1] - a[1])[0];
  const span = n === 1 ? `one ${data.interval}, ${data.periods[0]}` : `${n} periods from ${data.periods[0]} to ${data.periods[n - 1]}`;
  return `Line chart of each value's share of instances, ${span}; ${data.series.length} values, the largest at the end: ${last[0]} (${last[1].toFixed(1)} %).`;
}

for (const select of document.querySelectorAll("select[data-trend-select]")) {
  const canvas = document.getElementById(select.dataset.canvas);
  const figure = canvas.closest("figure");
  const summary = document.getElementById(canvas.getAttribute("aria-describedby"));
  const box = figure.querySelector(".chart-data .table-scroll");
  const current = {
    spec: dataOf(canvas, "chart"),
    name: canvas.getAttribute("aria-label"),
    summary: summary.textContent,
    table: box.querySelector("table"),
  };
  select.addEventListener("change", async () => {
    select.setCustomValidity("");
    if (!select.value) {
      drawChart(canvas, current.spec);
      canvas.setAttribute("aria-label", current.name);
      summary.textContent = current.summary;
      box.replaceChildren(current.table);
      return;
    }
    try {
      const data = await trend(select.dataset.trendSelect, select.value, select.dataset.status);
      drawChart(canvas, trendSpec(data));
      canvas.setAttribute("aria-label", `${current.name}: trend by ${data.interval}`);
      summary.textContent = trendSummary(data);
      box.replaceChildren(trendTable(data));
    } catch (error) {
      select.setCustomValidity(error.message);
      select.reportValidity();
    }
  });
}
