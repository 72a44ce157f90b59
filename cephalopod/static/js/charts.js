// Charts with the vendored Chart.js (window.Chart). Labels are drawn on a canvas: always text.
const PALETTE = ["#2456c7", "#e0762b", "#2a9d60", "#c23b5a", "#8a5cd1", "#c9a227", "#1b9aaa", "#7a7a7a",
  "#5d8b2f", "#b5517e"];

const textColor = () => getComputedStyle(document.body).color;

export function drawChart(canvas, spec) {
  const { Chart } = window;
  if (!Chart || !spec) return null;
  const existing = Chart.getChart(canvas);
  if (existing) existing.destroy();
  const isPie = spec.type === "pie";
  const datasets = spec.series ?? [{ label: spec.y_label ?? spec.label, data: spec.values }];
  datasets.forEach((set, i) => {
    const colour = PALETTE[i % PALETTE.length];
    set.backgroundColor ??= isPie ? spec.values.map((_, j) => PALETTE[j % PALETTE.length]) : colour;
    set.borderColor ??= isPie ? "transparent" : colour;
    set.pointRadius ??= spec.labels.length > 60 ? 0 : 2;
  });
  const axis = (title) => ({
    title: { display: Boolean(title), text: title ?? "", color: textColor() },
    ticks: { color: textColor() },
  });
  return new Chart(canvas, {
    type: spec.type,
    data: { labels: spec.labels.map(String), datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { display: isPie || datasets.length > 1, labels: { color: textColor() } },
      },
      scales: isPie ? {} : {
        x: axis(spec.x_label),
        y: { ...axis(spec.y_label), beginAtZero: true, stacked: Boolean(spec.stacked),
          max: spec.stacked ? 100 : undefined },
      },
    },
  });
}
