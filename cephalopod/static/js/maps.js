// Maps with the vendored jsvectormap (window.jsVectorMap, its world map keyed by ISO codes).
// Tooltips are set with textContent (tooltip.text without its html flag): names stay text.
const cssVar = (name, fallback) =>
  getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

const SCALE = { b1: "#c6d8f7", b2: "#8fb2ee", b3: "#5a8be0", b4: "#2f65c9", b5: "#1a418f" };

function buckets(regions) {
  const max = Math.max(1, ...Object.values(regions));
  const values = {};
  for (const [code, count] of Object.entries(regions)) {
    const level = max > 1 ? 1 + Math.round((4 * Math.log(count)) / Math.log(max)) : 3;
    values[code] = `b${Math.min(5, Math.max(1, level))}`;
  }
  return values;
}

export function drawMap(element, data) {
  const { jsVectorMap } = window;
  if (!jsVectorMap || !data) return null;
  const regions = data.regions ?? {};
  const names = data.names ?? {};
  const markers = data.markers ?? [];
  // a single server's map (data-zoom) starts zoomed in on it; the world map shows the world
  const zoom = Number(element.dataset.zoom);
  const focusOn = zoom && markers.length === 1 ? { coords: markers[0].coords, scale: zoom, animate: false } : undefined;
  return new jsVectorMap({
    focusOn,
    selector: element,
    map: "world",
    zoomButtons: true,
    zoomOnScroll: false,
    markers: markers.map((m) => ({ name: String(m.name ?? ""), coords: m.coords })),
    markerStyle: { initial: { fill: "#e0762b", stroke: cssVar("--ceph-map-border", "#fff"), r: 5 } },
    regionStyle: {
      initial: { fill: cssVar("--ceph-map-land", "#dfe3ea"), stroke: cssVar("--ceph-map-border", "#fff"),
        strokeWidth: 0.25 },
      hover: { fillOpacity: 0.8 },
    },
    series: { regions: [{ attribute: "fill", scale: SCALE, values: buckets(regions) }] },
    onRegionTooltipShow(event, tooltip, code) {
      const count = regions[code];
      const name = names[code] ?? tooltip.text();
      tooltip.text(count ? `${name}: ${count} instance${count === 1 ? "" : "s"}` : `${name}: none`);
    },
    onMarkerClick(event, index) {
      const url = markers[Number(index)]?.url;
      if (url && url.startsWith("/")) window.location.assign(url);
    },
  });
}
