// Calls to the admin JSON API with the session cookie and its CSRF header.
const token = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export async function api(url, method = "GET") {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": token() },
  });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    throw new Error(body?.error ?? `HTTP ${response.status}`);
  }
  return { status: response.status, body };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Parse the JSON of a data- attribute (the server escaped it; strangers' strings stay text).
export function dataOf(element, name) {
  try { return JSON.parse(element.dataset[name] ?? "null"); } catch { return null; }
}
