// The delete confirmation: a <dialog> in the page (not window.confirm); confirming posts the form.
export function setupDeleteDialog() {
  const dialog = document.getElementById("delete-dialog");
  if (!dialog) return;
  let pending = null;
  for (const form of document.querySelectorAll("form[data-delete]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed) return;
      event.preventDefault();
      pending = form;
      dialog.querySelector("[data-delete-name]").textContent = form.dataset.name ?? "";
      dialog.showModal();
      dialog.querySelector("[data-cancel]").focus();
    });
  }
  dialog.querySelector("[data-cancel]").addEventListener("click", () => dialog.close());
  dialog.querySelector("[data-confirm]").addEventListener("click", () => {
    dialog.close();
    if (pending) {
      pending.dataset.confirmed = "1";
      pending.requestSubmit();
    }
  });
}
