// The report prints whole: every <details> opens before printing (Chromium does not print the body of
// a closed one) and closes again afterwards; [data-print] buttons open the browser's print dialog
// (where "Save as PDF" is). A static file: CSP allows no inline script.
(function () {
  "use strict";
  var opened = [];
  window.addEventListener("beforeprint", function () {
    opened = Array.prototype.filter.call(document.querySelectorAll("details:not([open])"), function (d) {
      d.open = true;
      return true;
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });
})();
