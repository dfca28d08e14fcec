// The Stacks picture's webview: an icicle graph (d3-flame-graph, inverted) of the merged stacks the
// extension posts. Width = number of tasks; colour by module or by task state; hover shows the
// function and its count; a click zooms in and asks the extension for the frame's tasks and source.
// @ts-check
(function () {
    const vscode = acquireVsCodeApi();
    /** @type {any} */
    const d3 = /** @type {any} */ (window).d3;
    /** @type {any} */
    const flamegraph = /** @type {any} */ (window).flamegraph.default;
    const chartElement = /** @type {HTMLElement} */ (document.getElementById('chart'));
    const hover = /** @type {HTMLElement} */ (document.getElementById('hover'));
    const title = /** @type {HTMLElement} */ (document.getElementById('title'));
    const colourBy = /** @type {HTMLSelectElement} */ (document.getElementById('colourBy'));
    /** @type {any} */
    let tree;
    /** @type {any} */
    let chart;

    const STATE_COLOURS = { R: '#e5534b', D: '#d4a72c', S: '#539bf5', I: '#8b949e', T: '#986ee2', Z: '#6e7681', X: '#6e7681' };
    const MODULE_PALETTE = ['#f69d50', '#57ab5a', '#dcbdfb', '#f47067', '#96d0ff', '#c69026', '#e275ad', '#6cb6ff'];
    /** @type {Map<string, string>} */
    const moduleColours = new Map([['kernel', '#f0b27a']]);

    /** @param {any} node */
    function dominantState(node) {
        const entries = Object.entries(node.states || {});
        entries.sort((a, b) => b[1] - a[1]);
        return entries.length ? entries[0][0] : '?';
    }

    /** @param {any} d */
    function colour(d) {
        const data = d.data;
        if (data.name.startsWith('all tasks')) {
            return '#6e7681';
        }
        if (colourBy.value === 'state') {
            return STATE_COLOURS[dominantState(data)] || '#8b949e';
        }
        const module = data.module || 'unknown';
        if (!moduleColours.has(module)) {
            moduleColours.set(module, MODULE_PALETTE[moduleColours.size % MODULE_PALETTE.length]);
        }
        return moduleColours.get(module);
    }

    /** @param {any} d */
    function label(d) {
        const data = d.data;
        const states = Object.entries(data.states || {}).map(([s, n]) => `${s}:${n}`).join(' ');
        const module = data.module && data.module !== 'kernel' ? ` [${data.module}]` : '';
        return `${data.name}${module} — ${d.value} task${d.value === 1 ? '' : 's'} (${states})`;
    }

    function render() {
        chartElement.innerHTML = '';
        const width = Math.max(chartElement.clientWidth, 400);
        chart = flamegraph()
            .width(width)
            .cellHeight(20)
            .inverted(true)
            .sort(true)
            .minFrameSize(1)
            .transitionDuration(300)
            .selfValue(false)
            .setColorMapper(colour)
            .label(label)
            .onHover((/** @type {any} */ d) => {
                hover.textContent = label(d);
            })
            .onClick((/** @type {any} */ d) => {
                const data = d.data;
                if (data.name.startsWith('all tasks')) {
                    return;
                }
                vscode.postMessage({
                    type: 'frame',
                    name: data.name,
                    pc: data.pc,
                    returnAddress: data.returnAddress,
                    threadIds: data.threadIds,
                });
            });
        d3.select(chartElement).datum(tree).call(chart);
    }

    window.addEventListener('message', (event) => {
        const message = event.data;
        if (message.type === 'data') {
            tree = message.tree;
            title.textContent = `${message.taskCount} tasks, ${message.groupCount} distinct stacks — width = number of tasks`;
            render();
        }
    });
    colourBy.addEventListener('change', () => tree && render());
    /** @type {HTMLElement} */ (document.getElementById('reset')).addEventListener('click', () => chart && chart.resetZoom());
    /** @type {HTMLElement} */ (document.getElementById('export')).addEventListener('click', () => {
        const svg = chartElement.querySelector('svg');
        if (!svg) {
            return;
        }
        const copy = /** @type {SVGSVGElement} */ (svg.cloneNode(true));
        copy.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
        // Labels are HTML inside foreignObject; SVG viewers want text elements.
        copy.querySelectorAll('g.frame').forEach((g) => {
            const fo = g.querySelector('foreignObject');
            const div = fo && fo.querySelector('div');
            if (fo && div && /** @type {HTMLElement} */ (div).style.display !== 'none') {
                const text = document.createElementNS('http://www.w3.org/2000/svg', 'text');
                text.setAttribute('x', '4');
                text.setAttribute('y', '14');
                text.setAttribute('font-size', '12');
                text.setAttribute('font-family', 'Verdana, sans-serif');
                const width = Number(fo.getAttribute('width') || 0);
                text.textContent = width >= 35 ? (div.textContent || '').slice(0, Math.floor(width / 7)) : '';
                g.appendChild(text);
            }
            if (fo) {
                fo.remove();
            }
        });
        const style = document.createElementNS('http://www.w3.org/2000/svg', 'style');
        style.textContent = 'rect { stroke: #eeeeee; fill-opacity: 0.85; }';
        copy.insertBefore(style, copy.firstChild);
        vscode.postMessage({ type: 'exportSvg', svg: new XMLSerializer().serializeToString(copy) });
    });
    window.addEventListener('resize', () => tree && render());
    vscode.postMessage({ type: 'ready' });
})();
