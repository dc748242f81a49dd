// Small helpers to build the pages: elements, numbers as people read them, messages.
// Text always goes in as text nodes, never as HTML: names come from clients and may hold
// anything.

// h('a', {href: '#/queues', class: 'x', onclick: fn}, 'text', child, [children])
export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
        else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
}

export function append(el, children) {
    for (const c of children.flat(Infinity)) {
        if (c === undefined || c === null || c === false) continue;
        el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
}

export function clear(el) {
    el.replaceChildren();
    return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs = {}, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
    append(el, children);
    return el;
}

// ---- Numbers ---------------------------------------------------------------------------

export function fmtInt(n) {
    if (n === undefined || n === null || Number.isNaN(n)) return '–';
    return Number(n).toLocaleString('en-US');
}

export function fmtRate(r) {
    if (r === undefined || r === null || Number.isNaN(r)) return '–';
    if (r === 0) return '0.0/s';
    if (r < 10) return `${r.toFixed(1)}/s`;
    return `${Math.round(r).toLocaleString('en-US')}/s`;
}

export function fmtBytes(n) {
    if (n === undefined || n === null || Number.isNaN(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n);
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtBool(b) {
    return b ? 'yes' : 'no';
}

// A field table (arguments, client properties, headers) as "key: value" lines.
export function fmtTable(obj) {
    if (!obj || typeof obj !== 'object' || Object.keys(obj).length === 0) return h('span', { class: 'muted' }, 'none');
    return h('dl', { class: 'kv' }, Object.entries(obj).map(([k, v]) => [
        h('dt', {}, k),
        h('dd', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)),
    ]));
}

// The vhost "/" is shown as is; others too, but an empty name is shown as such.
export function fmtName(name) {
    return name === '' ? h('span', { class: 'muted' }, '(AMQP default)') : name;
}

// ---- Links -----------------------------------------------------------------------------

// '#/queues/%2F/q1' from ['queues', '/', 'q1']
export function route(...segments) {
    return `#/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
}

// ---- Messages --------------------------------------------------------------------------

// Shows a message at the top of the page: kind is 'ok' or 'error'.
export function flash(text, kind = 'ok') {
    const box = document.getElementById('flash');
    if (!box) return;
    const item = h('div', { class: `flash ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text,
        h('button', { type: 'button', class: 'link', 'aria-label': 'dismiss', onclick: () => item.remove() }, '×'));
    box.append(item);
    if (kind === 'ok') setTimeout(() => item.remove(), 5000);
}

export function errorText(e) {
    if (e && e.status) return `${e.status}: ${e.reason || e.error || e.message}`;
    return String(e?.message ?? e);
}

// A section with a heading; collapsible like RabbitMQ's (details/summary).
export function section(title, ...content) {
    return h('details', { class: 'section', open: true }, h('summary', {}, h('h2', {}, title)), ...content);
}

// Key/value figures as a two-column table.
export function facts(rows) {
    return h('table', { class: 'facts' }, h('tbody', {}, rows.filter(Boolean).map(([k, v]) =>
        h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
}

export function debounce(fn, ms) {
    let t;
    return (...args) => {
        clearTimeout(t);
        t = setTimeout(() => fn(...args), ms);
    };
}
