// The server detail page: history charts, the location map, crawl now and the delete dialog.
import { dataOf } from "./api.js";
import { drawChart } from "./charts.js";
import "./crawl.js";
import { setupDeleteDialog } from "./dialog.js";
import { drawMap } from "./maps.js";

for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
  drawChart(canvas, dataOf(canvas, "chart"));
}
for (const element of document.querySelectorAll("[data-map]")) {
  drawMap(element, dataOf(element, "map"));
}
setupDeleteDialog();
