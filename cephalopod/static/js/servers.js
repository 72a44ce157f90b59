// The server list: the column chooser (remembered in localStorage) and the delete dialog.
//
// The columns shown: the URL's `columns` (a shared view) when it has one, else the browser's
// remembered choice, else the server's default. A change is remembered, and when the URL names
// the columns it is kept true: the address, the page's links and the filter form follow.
import { setupDeleteDialog } from "./dialog.js";

const KEY = "cephalopod.columns";

function rememberedColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? "null");
    return Array.isArray(saved) ? saved : null;
  } catch {
    return null;
  }
}

function withColumns(href, value) {
  const url = new URL(href, location.href);
  if (url.origin !== location.origin || url.pathname !== location.pathname) return null;
  url.searchParams.set("columns", value);
  return url;
}

function followInUrl(value) {
  const here = withColumns(location.href, value);
  history.replaceState(history.state, "", here);
  for (const link of document.querySelectorAll('main a[href*="columns="]')) {
    const url = withColumns(link.getAttribute("href"), value);
    if (url) link.setAttribute("href", `${url.pathname}${url.search}`);
  }
  const hidden = document.querySelector('form[role="search"] input[name="columns"]');
  if (hidden) hidden.value = value;
}

function setupColumns() {
  const chooser = document.querySelector("[data-columns]");
  if (!chooser) return;
  const summary = chooser.querySelector("summary");
  const boxes = [...chooser.querySelectorAll('input[type="checkbox"]')];
  const inUrl = new URLSearchParams(location.search).has("columns");
  const apply = () => {
    const shown = new Set(boxes.filter((b) => b.checked).map((b) => b.value));
    for (const cell of document.querySelectorAll("[data-col]")) {
      cell.hidden = !shown.has(cell.dataset.col);
    }
  };
  const saved = rememberedColumns();
  if (saved && !inUrl) {
    for (const box of boxes) box.checked = saved.includes(box.value);
    apply();
  }
  for (const box of boxes) {
    box.addEventListener("change", () => {
      const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
      localStorage.setItem(KEY, JSON.stringify(chosen));
      if (inUrl) followInUrl(chosen.join(","));
      apply();
    });
  }
  // a menu's manners: Escape closes it (focus back on its summary), so does a click elsewhere
  chooser.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && chooser.open) {
      event.preventDefault();
      chooser.open = false;
      summary.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (chooser.open && !chooser.contains(event.target)) chooser.open = false;
  });
}

// When the chosen columns need more room than the page has, the table scrolls in its box: say so.
function setupScrollHint() {
  const wrap = document.querySelector(".table-wrap");
  const hint = document.querySelector("[data-scroll-hint]");
  if (!wrap || !hint) return;
  const update = () => { hint.hidden = wrap.scrollWidth <= wrap.clientWidth + 1; };
  new ResizeObserver(update).observe(wrap.querySelector("table"));
  new ResizeObserver(update).observe(wrap);
}

setupColumns();
setupScrollHint();
setupDeleteDialog();
