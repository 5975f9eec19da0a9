// Draws the plotly figures the server built (registry_ui/pages/charts.py). The data arrives through
// json_script (<script type="application/json" id="compare-figures">, or the id a chart names in
// data-figures): no inline script, CSP-safe.
(function () {
  "use strict";
  function draw() {
    if (!window.Plotly) { return; }
    var sources = {};
    var nodes = document.querySelectorAll("[data-figure]");
    Array.prototype.forEach.call(nodes, function (el) {
      var id = el.getAttribute("data-figures") || "compare-figures";
      if (!(id in sources)) {
        var source = document.getElementById(id);
        sources[id] = source ? JSON.parse(source.textContent) : {};
      }
      var fig = sources[id][el.getAttribute("data-figure")];
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
