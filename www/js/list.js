// Lists that stay usable with 10,000 objects: a page at a time, filtered by name, sorted by
// a column. Queues and exchanges are paged and sorted by the API itself (page, page_size,
// name, sort, sort_reverse: only the page's objects are rendered by the broker, and clicking
// a column sorts across all pages); the shorter
// lists (connections, users, ...) are fetched whole and paged here.

import { debounce, errorText, fmtInt, h } from './dom.js';
import { get, query } from './api.js';

const PAGE_SIZES = [20, 50, 100, 500];

function valueAt(obj, p) {
    return p.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function compare(a, b) {
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    if (a === undefined || a === null) return b === undefined || b === null ? 0 : -1;
    if (b === undefined || b === null) return 1;
    return String(a).localeCompare(String(b));
}

function sortItems(items, sort, reverse) {
    if (!sort) return items;
    const sorted = [...items].sort((x, y) => compare(valueAt(x, sort), valueAt(y, sort)));
    return reverse ? sorted.reverse() : sorted;
}

// A list the API pages: apiPath as /api/queues or /api/queues/VHOST.
export function serverSource(apiPath) {
    return async ({ page, pageSize, filter, sort, reverse }) => {
        const r = await get(apiPath + query({
            page, page_size: pageSize, name: filter,
            sort, sort_reverse: sort ? String(reverse) : undefined,
        }));
        // Sorted by the API across every page (RabbitMQ's order: numbers before strings, a
        // missing field as 0, strings byte by byte), so nothing is sorted again here.
        return { items: r.items, filtered: r.filtered_count, total: r.total_count };
    };
}

// A list fetched whole (a function that resolves to an array), paged here; filtered on
// filterKey (default name), case-insensitively.
export function clientSource(fetchAll, filterKey = 'name') {
    return async ({ page, pageSize, filter, sort, reverse }) => {
        const all = await fetchAll();
        const needle = (filter || '').toLowerCase();
        const matching = needle ? all.filter((o) => String(valueAt(o, filterKey) ?? '').toLowerCase().includes(needle)) : all;
        const sorted = sortItems(matching, sort, reverse);
        return {
            items: sorted.slice((page - 1) * pageSize, page * pageSize),
            filtered: matching.length,
            total: all.length,
        };
    };
}

// columns: [{label, key (sort key; absent: not sortable), render(item) -> node or text,
// class}]. Returns {el, reload}.
export function listView({ id, source, columns, noun = 'items', pageSize = 100, empty = 'Nothing here yet.' }) {
    const state = { page: 1, pageSize, filter: '', sort: undefined, reverse: false };
    const status = h('span', { class: 'list-status', 'aria-live': 'polite' });
    const pageLabel = h('span', { class: 'page-label' });
    const prev = h('button', { type: 'button', class: 'small', onclick: () => go(state.page - 1) }, '‹ Previous');
    const next = h('button', { type: 'button', class: 'small', onclick: () => go(state.page + 1) }, 'Next ›');
    const filterInput = h('input', {
        type: 'search', placeholder: 'Filter by name', 'aria-label': `Filter ${noun}`,
        oninput: debounce(() => { state.filter = filterInput.value.trim(); state.page = 1; reload(); }, 250),
    });
    const sizeSelect = h('select', {
        'aria-label': 'Page size',
        onchange: () => { state.pageSize = Number(sizeSelect.value); state.page = 1; reload(); },
    }, PAGE_SIZES.map((n) => h('option', { value: n, selected: n === pageSize }, `${n} per page`)));
    const head = h('tr', {}, columns.map((c) => {
        if (!c.key) return h('th', { scope: 'col', class: c.class }, c.label);
        const th = h('th', { scope: 'col', class: `sortable ${c.class ?? ''}`, 'aria-sort': 'none' },
            h('button', { type: 'button', class: 'link', onclick: () => sortBy(c.key) }, c.label));
        th.dataset.key = c.key;
        return th;
    }));
    const body = h('tbody');
    const table = h('table', { class: 'list', id }, h('thead', {}, head), body);
    const el = h('div', { class: 'list-view' },
        h('div', { class: 'list-tools' }, filterInput, sizeSelect, prev, pageLabel, next, status),
        h('div', { class: 'table-wrap' }, table));
    let pageCount = 1;
    let seq = 0;

    function sortBy(key) {
        if (state.sort === key) state.reverse = !state.reverse;
        else {
            state.sort = key;
            state.reverse = false;
        }
        for (const th of head.children) {
            if (!th.dataset.key) continue;
            th.setAttribute('aria-sort', th.dataset.key !== state.sort ? 'none' : state.reverse ? 'descending' : 'ascending');
        }
        reload();
    }

    function go(page) {
        state.page = Math.min(Math.max(page, 1), pageCount);
        reload();
    }

    async function reload() {
        const mine = ++seq;
        let r;
        try {
            r = await source({ ...state });
        } catch (e) {
            // A page past the end (objects deleted meanwhile): back to the last one.
            if (e.error === 'page_out_of_range' && state.page > 1) {
                state.page = 1;
                return reload();
            }
            if (mine === seq) status.textContent = `Cannot list ${noun}: ${errorText(e)}`;
            return;
        }
        if (mine !== seq) return; // an answer to an older request
        pageCount = Math.max(1, Math.ceil(r.filtered / state.pageSize));
        const first = r.filtered === 0 ? 0 : (state.page - 1) * state.pageSize + 1;
        const last = Math.min(r.filtered, first + r.items.length - 1);
        status.textContent = `${fmtInt(first)}–${fmtInt(last)} of ${fmtInt(r.filtered)} ${noun}` +
            (r.filtered !== r.total ? ` (filtered from ${fmtInt(r.total)})` : '');
        el.dataset.total = r.total;
        el.dataset.filtered = r.filtered;
        pageLabel.textContent = `page ${state.page} of ${pageCount}`;
        prev.disabled = state.page <= 1;
        next.disabled = state.page >= pageCount;
        body.replaceChildren(...(r.items.length ? r.items.map((item) =>
            h('tr', {}, columns.map((c) => h('td', { class: c.class }, c.render ? c.render(item) : valueAt(item, c.key)))))
            : [h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, r.total ? `No ${noun} match.` : empty))]));
    }

    reload();
    return { el, reload };
}
