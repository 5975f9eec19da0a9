// Draws the plotly figures the server built: the comparison's (registry_ui/pages/charts.py, elements
// with data-figure, data in #compare-figures) and a validation's (governance/validation/display.py,
// data-validation-figure, #validation-figures). The data arrives through json_script (a non-executable
// <script type="application/json">): no inline script, CSP-safe.
//
// A chart is drawn when it comes within a screen's height of the viewport, one chart per task, nearest
// first; plotly.js (the URL in this script tag's data-plotly) is loaded when the first chart needs it.
// Drawing costs about 50 ms of main-thread time per chart and evaluating plotly.js about 75 ms: done
// all at once at load, that kept a page with nine charts from answering input for over half a second,
// although every chart sat below the fold. A drawn chart gets data-drawn="true".
(function () {
  "use strict";
  var SOURCES = [["compare-figures", "data-figure"], ["validation-figures", "data-validation-figure"]];
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"] };
  var script = document.currentScript;
  var plotlyUrl = script ? script.getAttribute("data-plotly") : null;
  var plotly = window.Plotly ? "ready" : null;  // null, "loading", "ready" or "failed"
  var queue = [];
  var pending = false;

  function fail(el, why) {
    el.setAttribute("data-chart", "failed");
    el.textContent = "This chart could not be drawn: " + (why || "the charting library did not load.");
  }

  function draw(el) {
    var fig = el.figure;
    el.setAttribute("data-chart", "drawing");
    function broken(err) {
      fail(el, String(err && err.message || err));
      console.error(err);  // seen by the browser tests, which fail on any console error
    }
    try {
      window.Plotly.newPlot(el, fig.data, fig.layout, CONFIG).then(function () {
        el.setAttribute("data-chart", "drawn");
        el.setAttribute("data-drawn", "true");
      }, broken);
    } catch (err) {
      broken(err);
    }
  }

  function distance(el) {
    var box = el.getBoundingClientRect();
    if (box.bottom < 0) { return -box.bottom; }
    return Math.max(0, box.top - window.innerHeight);
  }

  function drawNext() {
    pending = false;
    if (!queue.length) { return; }
    queue.sort(function (a, b) { return distance(a) - distance(b); });
    draw(queue.shift());
    schedule();
  }

  // One chart per task, so input and painting get their turn between two charts.
  function schedule() {
    if (pending || plotly !== "ready" || !queue.length) { return; }
    pending = true;
    setTimeout(drawNext, 0);
  }

  function loadPlotly() {
    if (plotly) { return; }
    if (!plotlyUrl) {
      plotly = "failed";
      queue.splice(0).forEach(function (el) { fail(el); });
      return;
    }
    plotly = "loading";
    var tag = document.createElement("script");
    tag.src = plotlyUrl;
    tag.onload = function () { plotly = "ready"; schedule(); };
    tag.onerror = function () {
      plotly = "failed";
      queue.splice(0).forEach(function (el) { fail(el); });
    };
    document.head.appendChild(tag);
  }

  function want(el) {
    if (plotly === "failed") { fail(el); return; }
    queue.push(el);
    loadPlotly();
    schedule();
  }

  // A chart names its figure (data-figure or data-validation-figure) and may name the json_script that
  // holds it (data-figures, e.g. the portfolio's); otherwise its kind's default source.
  function charts() {
    var found = [];
    var sources = {};
    function figures(id) {
      if (!(id in sources)) {
        var source = document.getElementById(id);
        sources[id] = source ? JSON.parse(source.textContent) : {};
      }
      return sources[id];
    }
    SOURCES.forEach(function (pair) {
      Array.prototype.forEach.call(document.querySelectorAll("[" + pair[1] + "]"), function (el) {
        var fig = figures(el.getAttribute("data-figures") || pair[0])[el.getAttribute(pair[1])];
        if (!fig || el.hasAttribute("data-chart")) { return; }  // no figure, or claimed by an earlier copy of this script
        el.setAttribute("data-chart", "waiting");
        el.figure = fig;
        found.push(el);
      });
    });
    return found;
  }

  function start() {
    var found = charts();
    if (!found.length) { return; }
    if (!("IntersectionObserver" in window)) {
      found.forEach(want);
      return;
    }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) { return; }
        observer.unobserve(entry.target);
        want(entry.target);
      });
    }, { rootMargin: "100% 0px" });
    found.forEach(function (el) { observer.observe(el); });
    // Printing shows the whole page: draw what is still waiting, if plotly is there to draw it.
    window.addEventListener("beforeprint", function () {
      if (plotly !== "ready") { return; }
      found.forEach(function (el) {
        if (el.getAttribute("data-chart") === "waiting") { observer.unobserve(el); draw(el); }
      });
      queue.length = 0;
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
