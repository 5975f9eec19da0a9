// Draws the plotly figures the server built (registry_ui/charts.py). The data arrives through
// json_script (<script type="application/json" id="compare-figures">): no inline script, CSP-safe.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("compare-figures");
    if (!source || !window.Plotly) { return; }
    var figures = JSON.parse(source.textContent);
    var nodes = document.querySelectorAll("[data-figure]");
    Array.prototype.forEach.call(nodes, function (el) {
      var fig = figures[el.getAttribute("data-figure")];
      if (!fig) { return; }
      window.Plotly.newPlot(el, fig.data, fig.layout, {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]
      }).then(function () { el.setAttribute("data-drawn", "true"); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
