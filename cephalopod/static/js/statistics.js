// The statistics page: the world map, the charts and the trend view of count charts.
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

function trendSpec(data, percent) {
  return {
    type: "line",
    label: data.label,
    x_label: data.interval[0].toUpperCase() + data.interval.slice(1),
    y_label: percent ? "Share of instances (%)" : "Instances",
    labels: data.periods,
    values: [],
    series: data.series.map((s) => ({
      label: String(s.category), data: percent ? s.percents : s.counts, fill: false })),
  };
}

for (const select of document.querySelectorAll("select[data-trend-select]")) {
  const canvas = document.getElementById(select.dataset.canvas);
  const current = dataOf(canvas, "chart");
  select.addEventListener("change", async () => {
    if (!select.value) {
      drawChart(canvas, current);
      return;
    }
    try {
      const data = await trend(select.dataset.trendSelect, select.value, select.dataset.status);
      drawChart(canvas, trendSpec(data, true));
    } catch (error) {
      select.setCustomValidity(error.message);
      select.reportValidity();
    }
  });
}

for (const canvas of document.querySelectorAll("canvas[data-trend-field]")) {
  const figure = canvas.closest("[data-trend-url]");
  if (!figure?.dataset.trendUrl) {
    canvas.closest(".canvas-box").hidden = true;
    continue;
  }
  trend(canvas.dataset.trendField, "day", canvas.dataset.status)
    .then((data) => drawChart(canvas, trendSpec(data, false)))
    .catch(() => { canvas.closest(".canvas-box").hidden = true; });
}
