// Line charts drawn as SVG, our own: a few dozen lines do what the UI needs (a handful of
// series over the last minutes), so no chart library is shipped.
//
// samples: [{t: milliseconds, values: {key: number}}], oldest first. Each series is
// {key, label, color}. The legend shows each series' latest value and carries it, and the
// highest in the window, as data-value and data-peak (the browser test reads those).

import { fmtRate, h, svg } from './dom.js';

const W = 640;
const H = 180;
const PAD = { left: 56, right: 8, top: 10, bottom: 22 };

// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least v.
function niceCeiling(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
}

export function lineChart({ id, title, series, samples, windowMs = 10 * 60 * 1000, format = fmtRate, now = Date.now() }) {
    const from = now - windowMs;
    const shown = samples.filter((s) => s.t >= from);
    let peak = 0;
    for (const s of shown) for (const se of series) peak = Math.max(peak, s.values[se.key] ?? 0);
    const top = niceCeiling(peak);
    const x = (t) => PAD.left + ((t - from) / windowMs) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);

    const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-plot', role: 'img', 'aria-label': title });
    for (const frac of [0, 0.5, 1]) {
        const v = top * frac;
        plot.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }));
        plot.append(svg('text', { x: PAD.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, format(v)));
    }
    plot.append(svg('text', { x: PAD.left, y: H - 6, class: 'axis' }, `−${Math.round(windowMs / 60000)} min`));
    plot.append(svg('text', { x: W - PAD.right, y: H - 6, class: 'axis', 'text-anchor': 'end' }, 'now'));
    if (shown.length < 2) {
        plot.append(svg('text', { x: W / 2, y: H / 2, class: 'axis', 'text-anchor': 'middle' }, 'collecting samples…'));
    }
    for (const se of series) {
        const pts = shown.filter((s) => s.values[se.key] !== undefined)
            .map((s) => `${x(s.t).toFixed(1)},${y(s.values[se.key]).toFixed(1)}`);
        if (pts.length > 1) {
            plot.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: se.color, 'stroke-width': 2, 'data-series': se.key }));
        } else if (pts.length === 1) {
            const [px, py] = pts[0].split(',');
            plot.append(svg('circle', { cx: px, cy: py, r: 2.5, fill: se.color, 'data-series': se.key }));
        }
    }

    const last = shown.length ? shown[shown.length - 1].values : {};
    const legend = h('ul', { class: 'legend' }, series.map((se) => {
        const values = shown.map((s) => s.values[se.key]).filter((v) => v !== undefined);
        const known = last[se.key] !== undefined;
        return h('li', {
            'data-series': se.key,
            'data-value': known ? last[se.key] : '',
            'data-peak': values.length ? Math.max(...values) : '',
        }, h('span', { class: 'swatch', 'data-color': se.color }), se.label, ' ',
        h('b', {}, known ? format(last[se.key]) : 'n/a'));
    }));
    // The swatches' colours: set through the DOM (the policy allows no inline style markup).
    legend.querySelectorAll('.swatch').forEach((el) => { el.style.background = el.dataset.color; });

    return h('figure', { class: 'chart', 'data-chart': id }, h('figcaption', {}, title), plot, legend);
}

// Samples of a polled object, kept for windowMs: add() takes the object's JSON and the paths
// of the values to keep ({publish: 'message_stats.publish_details.rate', ...}).
export class History {
    constructor(paths, windowMs = 10 * 60 * 1000) {
        this.paths = paths;
        this.windowMs = windowMs;
        this.samples = [];
    }

    add(obj, t = Date.now()) {
        const values = {};
        for (const [key, p] of Object.entries(this.paths)) {
            const v = p.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
            if (typeof v === 'number') values[key] = v;
        }
        this.samples.push({ t, values });
        while (this.samples.length && this.samples[0].t < t - this.windowMs) this.samples.shift();
    }
}

export const RATE_SERIES = [
    { key: 'publish', label: 'publish', color: '#d97706' },
    { key: 'deliver', label: 'deliver / get', color: '#2563eb' },
    { key: 'ack', label: 'ack', color: '#16a34a' },
    { key: 'redeliver', label: 'redeliver', color: '#dc2626' },
    { key: 'confirm', label: 'confirm', color: '#7c3aed' },
];

export const RATE_PATHS = {
    publish: 'message_stats.publish_details.rate',
    deliver: 'message_stats.deliver_get_details.rate',
    ack: 'message_stats.ack_details.rate',
    redeliver: 'message_stats.redeliver_details.rate',
    confirm: 'message_stats.confirm_details.rate',
};

export const DEPTH_SERIES = [
    { key: 'ready', label: 'ready', color: '#d97706' },
    { key: 'unacked', label: 'unacked', color: '#2563eb' },
    { key: 'total', label: 'total', color: '#4b5563' },
];

// The span the charts show, kept for the session: the last 1, 5 or 10 minutes.
const RANGE_KEY = 'warren.chart-range';

export function chartRangeMs() {
    return Number(sessionStorage.getItem(RANGE_KEY) ?? 10) * 60 * 1000;
}

export function rangePicker(onChange) {
    const sel = h('select', {
        id: 'chart-range', 'aria-label': 'Chart range',
        onchange: () => { sessionStorage.setItem(RANGE_KEY, sel.value); onChange(); },
    }, [1, 5, 10].map((m) => h('option', { value: m, selected: chartRangeMs() === m * 60000 }, `Last ${m} minute${m > 1 ? 's' : ''}`)));
    return sel;
}
