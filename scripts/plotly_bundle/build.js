// node build.js: one minified script that defines window.Plotly, built the way plotly.js builds its
// own dist bundles (esbuild, IIFE, global "Plotly", es2016), written into static/vendor/.
'use strict';

const path = require('path');
const esbuild = require('esbuild');
const { version } = require('plotly.js/package.json');

const out = path.join(__dirname, '..', '..', 'static', 'vendor', 'plotly-scatter-bar.min.js');

// plotly's registry requires maplibre's stylesheet when a map trace registers; none does here, but the
// bundler would still inline the 80 kB stylesheet. Resolve it to nothing.
const noMapStylesheet = {
    name: 'no-map-stylesheet',
    setup(build) {
        build.onResolve({ filter: /maplibre-gl\.css$/ }, (args) => ({ path: args.path, namespace: 'empty' }));
        build.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: '', loader: 'js' }));
    },
};

esbuild.build({
    entryPoints: [path.join(__dirname, 'entry.js')],
    outfile: out,
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    target: 'es2016',
    define: { global: 'window', 'define.amd': 'false' },
    plugins: [noMapStylesheet],
    legalComments: 'eof',
    banner: {
        js: `/*! plotly.js v${version} (scatter and bar traces only; scripts/plotly_bundle) | MIT License, `
            + 'Copyright (c) Plotly, Inc. | https://github.com/plotly/plotly.js */',
    },
    logLevel: 'warning',
}).then(() => console.log(`wrote ${path.relative(process.cwd(), out)} (plotly.js ${version})`))
  .catch(() => process.exit(1));
