// The server list: the column chooser (remembered in localStorage) and the delete dialog.
import { setupDeleteDialog } from "./dialog.js";

const KEY = "cephalopod.columns";

function setupColumns() {
  const chooser = document.querySelector("[data-columns]");
  if (!chooser) return;
  const boxes = [...chooser.querySelectorAll('input[type="checkbox"]')];
  const fromUrl = new URLSearchParams(location.search).has("columns");
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(KEY) ?? "null"); } catch { saved = null; }
  const apply = () => {
    const shown = new Set(boxes.filter((b) => b.checked).map((b) => b.value));
    for (const cell of document.querySelectorAll("[data-col]")) {
      cell.hidden = !shown.has(cell.dataset.col);
    }
  };
  if (Array.isArray(saved) && !fromUrl) {
    for (const box of boxes) box.checked = saved.includes(box.value);
    apply();
  }
  for (const box of boxes) {
    box.addEventListener("change", () => {
      localStorage.setItem(KEY, JSON.stringify(boxes.filter((b) => b.checked).map((b) => b.value)));
      apply();
    });
  }
}

setupColumns();
setupDeleteDialog();
