// Charts with the vendored Chart.js (window.Chart). Labels are drawn on a canvas: always text.
// Colours come from app.css's custom properties, so that light and dark both read well.
const PALETTE = ["#2456c7", "#e0762b", "#2a9d60", "#c23b5a", "#8a5cd1", "#c9a227", "#1b9aaa", "#7a7a7a",
  "#5d8b2f", "#b5517e"];

const cssVar = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

// Counts are whole numbers: their axis must never show 0.5 (Chart.js picks such steps for small
// maxima unless told the precision).
const whole = (values) => values.every((v) => v === null || v === undefined || Number.isInteger(v));

export function drawChart(canvas, spec) {
  const { Chart } = window;
  if (!Chart || !spec) return null;
  const existing = Chart.getChart(canvas);
  if (existing) existing.destroy();
  const text = cssVar("--ceph-chart-text", getComputedStyle(document.body).color);
  const grid = cssVar("--ceph-chart-grid", "rgba(0, 0, 0, 0.1)");
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  const isPie = spec.type === "pie";
  const count = spec.labels.length;
  const datasets = spec.series ?? [{ label: spec.y_label ?? spec.label, data: spec.values }];
  datasets.forEach((set, i) => {
    const colour = PALETTE[i % PALETTE.length];
    set.backgroundColor ??= isPie ? spec.values.map((_, j) => PALETTE[j % PALETTE.length]) : colour;
    set.borderColor ??= isPie ? cssVar("--pico-background-color", "#fff") : colour;
    set.pointRadius ??= count > 60 ? 0 : count < 3 ? 5 : 3;
  });
  const axis = (title) => ({
    title: { display: Boolean(title), text: title ?? "", color: text },
    ticks: { color: text },
    grid: { color: grid },
    border: { color: grid },
  });
  const y = axis(spec.y_label);
  if (whole(datasets.flatMap((set) => set.data))) y.ticks.precision = 0;
  if (spec.percent) y.ticks.callback = (value) => `${value} %`;
  const x = axis(spec.x_label);
  x.offset = spec.type === "bar" || count < 3;  // a lone point in the middle, not on the axis
  return new Chart(canvas, {
    type: spec.type,
    data: { labels: spec.labels.map(String), datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { display: isPie || datasets.length > 1, labels: { color: text } },
      },
      scales: isPie ? {} : {
        x,
        y: { ...y, beginAtZero: true, grace: spec.stacked ? 0 : "5%", stacked: Boolean(spec.stacked),
          max: spec.stacked ? 100 : undefined },
      },
    },
  });
}
