'use strict';

// plotly.js core (which always holds the scatter trace and the components: axes, legend, hover,
// annotations, shapes, modebar) plus the bar trace. The console draws nothing else: go.Scatter and
// go.Bar in registry_ui/pages/charts.py and governance/validation/display.py. A new trace type
// there needs its lib/<type> registered here and the bundle rebuilt (README.md beside this file).
var Plotly = require('plotly.js/lib/core');

Plotly.register([require('plotly.js/lib/bar')]);

module.exports = Plotly;
