// Copies the Stacks picture's libraries (d3 7, d3-flame-graph 5) from node_modules into media/vendor,
// so the webview loads them from the extension itself (no CDN). Run by `npm run media`.
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const vendor = path.join(root, 'media', 'vendor');
const files = [
    ['d3/dist/d3.min.js', 'd3.min.js'],
    ['d3-flame-graph/dist/d3-flamegraph.umd.min.js', 'd3-flamegraph.umd.min.js'],
    ['d3-flame-graph/dist/d3-flamegraph.css', 'd3-flamegraph.css'],
];
fs.mkdirSync(vendor, { recursive: true });
for (const [from, to] of files) {
    const source = path.join(root, 'node_modules', from);
    if (!fs.existsSync(source)) {
        console.error(`missing ${source}: run 'npm install' in ${root} first`);
        process.exit(1);
    }
    fs.copyFileSync(source, path.join(vendor, to));
}
console.log(`copied ${files.length} webview libraries to ${vendor}`);
