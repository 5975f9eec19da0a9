// Draws a validation's figures (latency, prediction histograms) built by governance/validation/display.py.
// The data arrives through json_script (<script type="application/json" id="validation-figures">): CSP-safe.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("validation-figures");
    if (!source || !window.Plotly) { return; }
    var figures = JSON.parse(source.textContent);
    var nodes = document.querySelectorAll("[data-validation-figure]");
    Array.prototype.forEach.call(nodes, function (el) {
      var fig = figures[el.getAttribute("data-validation-figure")];
      if (!fig) { return; }
      window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false })
        .then(function () { el.setAttribute("data-drawn", "true"); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
