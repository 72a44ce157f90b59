// The delete confirmation: a <dialog> in the page (not window.confirm); confirming posts the form.
// Keyboard: opening moves focus into it (on Cancel, the safe choice), Escape or Cancel closes
// it, and focus returns to the button that opened it.
export function setupDeleteDialog() {
  const dialog = document.getElementById("delete-dialog");
  if (!dialog) return;
  let pending = null;
  let opener = null;
  for (const form of document.querySelectorAll("form[data-delete]")) {
    form.dataset.enhanced = "1"; // the dialog asks from now on (the server's page before)
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed) return;
      event.preventDefault();
      pending = form;
      opener = event.submitter ?? form.querySelector("button");
      dialog.querySelector("[data-delete-name]").textContent = form.dataset.name ?? "";
      dialog.showModal();
      dialog.querySelector("[data-cancel]").focus();
    });
  }
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "confirm") opener?.focus();
    dialog.returnValue = "";
  });
  dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());
  dialog.querySelector("[data-confirm]").addEventListener("click", () => {
    dialog.close("confirm");
    if (pending) {
      pending.dataset.confirmed = "1";
      const confirmed = document.createElement("input");
      Object.assign(confirmed, { type: "hidden", name: "confirmed", value: "1" });
      pending.append(confirmed);
      pending.requestSubmit();
    }
  });
}
