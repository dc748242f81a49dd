// Overview: totals, message rates and queued messages as charts over the last ten minutes,
// the node's figures and alarms, the listeners. The app samples the overview on every tick,
// whatever page is shown, so the charts have their history when this page is opened.

import { get } from '../api.js';
import { chartRangeMs, DEPTH_SERIES, History, lineChart, rangePicker, RATE_PATHS, RATE_SERIES } from '../chart.js';
import { clear, errorText, facts, fmtBytes, fmtInt, h, section } from '../dom.js';

const rates = new History(RATE_PATHS);
const depth = new History({
    ready: 'queue_totals.messages_ready',
    unacked: 'queue_totals.messages_unacknowledged',
    total: 'queue_totals.messages',
});
let last = null; // the last overview
let nodes = null; // the last /api/nodes, or an error
let sampling = null;

// Fetches the overview (and the node figures) and adds a sample to the charts.
export function sample() {
    if (sampling) return sampling;
    sampling = (async () => {
        try {
            const o = await get('/overview');
            const t = Date.now();
            last = o;
            rates.add(o, t);
            depth.add(o, t);
        } catch {
            // shown as stale figures; the next tick tries again
        }
        try {
            nodes = await get('/nodes');
        } catch (e) {
            nodes = e;
        }
    })().finally(() => { sampling = null; });
    return sampling;
}

export function forget() {
    rates.samples = [];
    depth.samples = [];
    last = null;
    nodes = null;
}

function usage(used, limit, format, invert = false) {
    const frac = limit > 0 ? Math.min(used / limit, 1) : 0;
    const bar = h('span', { class: 'bar' }, h('span', { class: 'fill' }));
    bar.firstChild.style.width = `${(invert ? 1 - frac : frac) * 100}%`;
    return h('span', { class: 'usage' }, bar, ` ${format(used)} / ${format(limit)}`);
}

function alarm(on, what) {
    return h('span', { class: on ? 'badge alarm' : 'badge ok', 'data-alarm': what }, on ? `${what} alarm` : 'OK');
}

function drawNode(box) {
    clear(box);
    if (nodes instanceof Error) {
        box.append(h('p', { class: 'muted' }, nodes.status === 401
            ? 'The node\'s figures need the monitoring or administrator tag.'
            : `Cannot read the node's figures: ${errorText(nodes)}`));
        return;
    }
    for (const n of nodes ?? []) {
        box.append(h('div', { class: 'node-card', 'data-node': n.name }, h('h3', {}, n.name),
            facts([
                ['Memory', usage(n.mem_used, n.mem_limit, fmtBytes)],
                ['Memory alarm', alarm(n.mem_alarm, 'memory')],
                ['Disk free', h('span', {}, `${fmtBytes(n.disk_free)} (limit ${fmtBytes(n.disk_free_limit)})`)],
                ['Disk alarm', alarm(n.disk_free_alarm, 'disk')],
                ['File descriptors', usage(n.fd_used, n.fd_total, fmtInt)],
                ['Sockets', fmtInt(n.sockets_used)],
                ['Processors', fmtInt(n.processors)],
                ['Running', n.running ? 'yes' : 'no'],
            ])));
    }
}

function drawTotals(box) {
    clear(box);
    if (!last) {
        box.append(h('p', { class: 'muted' }, 'No figures yet.'));
        return;
    }
    const ot = last.object_totals ?? {};
    const qt = last.queue_totals ?? {};
    const card = (key, label, value) => h('div', { class: 'total', 'data-total': key }, h('span', { class: 'value' }, fmtInt(value)), h('span', { class: 'label' }, label));
    box.append(
        card('connections', 'Connections', ot.connections),
        card('channels', 'Channels', ot.channels),
        card('exchanges', 'Exchanges', ot.exchanges),
        card('queues', 'Queues', ot.queues),
        card('consumers', 'Consumers', ot.consumers),
        card('messages', 'Messages', qt.messages),
        card('ready', 'Ready', qt.messages_ready),
        card('unacked', 'Unacked', qt.messages_unacknowledged));
}

export async function render(page) {
    const totals = h('div', { class: 'totals' });
    const charts = h('div', { class: 'charts' });
    const node = h('div', { class: 'nodes' });
    const listeners = h('div');
    page.append(h('h1', {}, 'Overview'), section('Totals', totals), section('Messages', h('div', { class: 'page-tools' }, rangePicker(() => draw())), charts),
        section('Node', node), section('Listeners', listeners));

    function draw() {
        drawTotals(totals);
        clear(charts).append(
            lineChart({ id: 'queued', title: 'Queued messages', series: DEPTH_SERIES, samples: depth.samples, format: fmtInt, windowMs: chartRangeMs() }),
            lineChart({ id: 'rates', title: 'Message rates', series: RATE_SERIES, samples: rates.samples, windowMs: chartRangeMs() }));
        drawNode(node);
        clear(listeners).append(h('table', { class: 'list' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Protocol'), h('th', {}, 'Address'), h('th', {}, 'Port'))),
            h('tbody', {}, (last?.listeners ?? []).map((l) =>
                h('tr', {}, h('td', {}, l.protocol), h('td', {}, l.ip_address), h('td', {}, String(l.port)))))));
    }

    if (!last) await sample();
    draw();
    return { refresh: draw };
}
