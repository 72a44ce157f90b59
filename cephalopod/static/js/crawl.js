// "Crawl all" with a live progress bar that survives a reload, and "Crawl now" per server.
// A busy button is aria-disabled, not disabled: a disabled button would drop the keyboard focus
// to the page's start; this one keeps it and ignores presses until its crawl is done.
import { api, sleep } from "./api.js";

const busy = (button) => button.getAttribute("aria-disabled") === "true";

function setBusy(button, on) {
  if (on) button.setAttribute("aria-disabled", "true");
  else button.removeAttribute("aria-disabled");
}

const HEALTH = { ok: "OK", error: "Failing", never: "Never crawled" };

async function follow(box, job) {
  box.hidden = false;
  box.dataset.job = job;
  const bar = box.querySelector("progress");
  const text = box.querySelector('[data-testid="crawl-progress-text"]');
  for (;;) {
    let status;
    try {
      status = (await api(`/api/admin/crawl/${encodeURIComponent(job)}`)).body;
    } catch (error) {
      text.textContent = `Progress unavailable: ${error.message}`;
      return;
    }
    bar.max = Math.max(status.total, 1);
    bar.value = status.done;
    text.textContent = `${status.done} / ${status.total} · ${status.ok} ok · ${status.failed} failed · ${status.state}`;
    if (status.state === "done" || status.state === "failed") {
      box.dataset.job = "";
      return;
    }
    await sleep(1000);
  }
}

function setupCrawlAll() {
  const box = document.querySelector('[data-testid="crawl-progress"]');
  if (!box) return;
  for (const form of document.querySelectorAll("form[data-crawl-all]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button");
      if (busy(button)) return;
      setBusy(button, true);
      try {
        const { body } = await api("/api/admin/crawl", "POST");
        await follow(box, body.job);
      } catch (error) {
        box.hidden = false;
        box.querySelector('[data-testid="crawl-progress-text"]').textContent = error.message;
      } finally {
        setBusy(button, false);
      }
    });
  }
  if (box.dataset.job) follow(box, box.dataset.job);
}

function showItem(uuid, item) {
  for (const scope of document.querySelectorAll(`[data-uuid="${CSS.escape(uuid)}"]`)) {
    const health = scope.querySelector("[data-health]");
    if (health) {
      const badge = document.createElement("span");
      badge.className = `badge badge-${item.crawl_status}`;
      badge.textContent = HEALTH[item.crawl_status] ?? item.crawl_status;
      if (item.crawl_error) badge.title = item.crawl_error;
      health.replaceChildren(badge);
    }
    const last = scope.querySelector("[data-last-crawl]");
    if (last && item.last_crawl) {
      const time = document.createElement("time");
      time.dateTime = item.last_crawl;
      time.textContent = `${new Date(item.last_crawl).toLocaleString()} (just now)`;
      last.replaceChildren(time);
    }
  }
}

async function crawlNow(form, button) {
  const uuid = form.dataset.crawlNow;
  if (busy(button)) return;
  const label = button.textContent;
  setBusy(button, true);
  button.setAttribute("aria-busy", "true");
  button.textContent = "Crawling…";
  try {
    let { status, body } = await api(`/api/admin/instances/${encodeURIComponent(uuid)}/crawl`, "POST");
    if (status === 202 && body?.job) {  // queued: poll the job, then read the item
      for (;;) {
        const job = (await api(`/api/admin/crawl/${encodeURIComponent(body.job)}`)).body;
        if (job.state === "done" || job.state === "failed") break;
        await sleep(1000);
      }
      body = (await api(`/api/admin/instances/${encodeURIComponent(uuid)}`)).body;
    }
    showItem(uuid, body);
  } catch (error) {
    button.title = error.message;
  } finally {
    setBusy(button, false);
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

function setupCrawlNow() {
  for (const form of document.querySelectorAll("form[data-crawl-now]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      crawlNow(form, form.querySelector("button"));
    });
  }
}

setupCrawlAll();
setupCrawlNow();
