// Confirmation dialogs of consequential actions (approve, reject, deploy, cancel, rollback).
// A button with data-dialog="<id>" opens that <dialog> as a modal; [data-close-dialog] closes it;
// a dialog rendered with data-open-modal (a refused submit coming back with its text) opens at once.
// A submit button with data-require="<field id>" makes that field required (the reject reason); the
// server refuses an empty reason too. A form with data-confirm="<text>" asks before it submits.
// No inline script anywhere (CSP: script-src 'self').
(function () {
  "use strict";
  function open(dialog) {
    if (!dialog) { return; }
    if (dialog.open) { dialog.close(); }
    if (typeof dialog.showModal === "function") { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
    var field = dialog.querySelector("textarea, input:not([type=hidden])");
    if (field) { field.focus(); }
  }
  function init() {
    document.querySelectorAll("[data-require]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-require"));
      if (field) { field.required = true; }
    });
    document.addEventListener("click", function (event) {
      var opener = event.target.closest("[data-dialog]");
      if (opener) {
        event.preventDefault();
        open(document.getElementById(opener.getAttribute("data-dialog")));
        return;
      }
      var closer = event.target.closest("[data-close-dialog]");
      if (closer) {
        var dialog = closer.closest("dialog");
        if (dialog) { dialog.close(); }
      }
    });
    document.querySelectorAll("dialog[data-open-modal]").forEach(open);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      var dialog = document.getElementById(form.getAttribute("data-confirm"));
      if (!dialog) { return; }
      form.addEventListener("submit", function (event) {
        if (form.dataset.confirmed === "yes") { return; }
        if (!form.checkValidity()) { return; }
        event.preventDefault();
        open(dialog);
      });
      dialog.querySelectorAll("[data-confirm-submit]").forEach(function (button) {
        button.addEventListener("click", function () {
          form.dataset.confirmed = "yes";
          dialog.close();
          if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
        });
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
