// Forms with data-confirm ask before they submit (no inline onsubmit: the CSP forbids inline handlers).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
