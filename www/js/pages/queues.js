// Queues: the list (paged by the API: 10,000 queues are 100 pages of 100), adding one, and one
// queue with its figures, charts, consumers, bindings, and forms to publish, get, purge and
// delete.

import { del, get, path, put } from '../api.js';
import { chartRangeMs, DEPTH_SERIES, History, lineChart, rangePicker, RATE_PATHS, RATE_SERIES } from '../chart.js';
import { clear, errorText, facts, fmtBool, fmtBytes, fmtInt, fmtRate, fmtTable, h, route, section } from '../dom.js';
import { bindingForm, bindingsTable, getForm, publishForm } from '../messages.js';
import { actionButton, form, parseTable, vhostNames, vhostPicker } from '../forms.js';
import { listView, serverSource } from '../list.js';

function features(q) {
    return [q.durable ? 'D' : null, q.auto_delete ? 'AD' : null, q.exclusive ? 'Excl' : null,
        Object.keys(q.arguments ?? {}).length ? 'Args' : null].filter(Boolean).join(' ');
}

const rate = (q, key) => fmtRate(q.message_stats?.[`${key}_details`]?.rate);

export async function renderList(page) {
    const holder = h('div');
    let list;
    function build(vhost) {
        list = listView({
            id: 'queues', noun: 'queues',
            source: serverSource(vhost ? path`/queues/${vhost}` : '/queues'),
            columns: [
                { label: 'Virtual host', key: 'vhost' },
                { label: 'Name', key: 'name', render: (q) => h('a', { href: route('queues', q.vhost, q.name) }, q.name) },
                { label: 'Type', key: 'type' },
                { label: 'Features', render: features },
                { label: 'Policy', key: 'policy', render: (q) => q.policy ?? '' },
                { label: 'State', key: 'state' },
                { label: 'Ready', key: 'messages_ready', class: 'num', render: (q) => fmtInt(q.messages_ready) },
                { label: 'Unacked', key: 'messages_unacknowledged', class: 'num', render: (q) => fmtInt(q.messages_unacknowledged) },
                { label: 'Total', key: 'messages', class: 'num', render: (q) => fmtInt(q.messages) },
                { label: 'Incoming', key: 'message_stats.publish_details.rate', class: 'num', render: (q) => rate(q, 'publish') },
                { label: 'Deliver / get', key: 'message_stats.deliver_get_details.rate', class: 'num', render: (q) => rate(q, 'deliver_get') },
                { label: 'Ack', key: 'message_stats.ack_details.rate', class: 'num', render: (q) => rate(q, 'ack') },
                { label: 'Consumers', key: 'consumers', class: 'num', render: (q) => fmtInt(q.consumers) },
            ],
            empty: 'No queues yet.',
        });
        clear(holder).append(list.el);
    }
    build('');
    const vhosts = await vhostNames().catch(() => ['/']);
    page.append(h('h1', {}, 'Queues'), h('div', { class: 'page-tools' }, vhostPicker(build)), holder,
        section('Add a new queue', form({
            id: 'add-queue', submit: 'Add queue',
            fields: [
                { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts },
                { name: 'name', label: 'Name', required: true },
                { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
                { name: 'auto_delete', label: 'Auto delete', type: 'checkbox' },
                { name: 'arguments', label: 'Arguments', type: 'textarea', rows: 2, placeholder: 'x-max-length = 1000' },
            ],
            onSubmit: async (v) => {
                await put(path`/queues/${v.vhost}/${v.name}`, { durable: v.durable, auto_delete: v.auto_delete, arguments: parseTable(v.arguments) });
                list.reload();
                return `Queue ${v.name} added.`;
            },
        })));
    return { refresh: () => list.reload() };
}

export async function renderOne(page, { params }) {
    const { vhost, name } = params;
    const rates = new History(RATE_PATHS);
    const depth = new History({ ready: 'messages_ready', unacked: 'messages_unacknowledged', total: 'messages' });
    const info = h('div', { class: 'queue-facts' });
    const charts = h('div', { class: 'charts' });
    const consumers = h('div');
    const bindings = h('div');
    page.append(h('h1', {}, 'Queue ', h('span', { class: 'name' }, name), h('span', { class: 'in' }, ` in ${vhost}`)));

    let q;
    async function load() {
        try {
            q = await get(path`/queues/${vhost}/${name}`);
        } catch (e) {
            clear(info).append(h('p', { class: 'error', role: 'alert' }, e.status === 404 ? 'No such queue.' : errorText(e)));
            return false;
        }
        rates.add(q);
        depth.add(q);
        clear(info).append(
            facts([
                ['Type', q.type],
                ['State', q.state],
                ['Features', `durable ${fmtBool(q.durable)}, auto delete ${fmtBool(q.auto_delete)}, exclusive ${fmtBool(q.exclusive)}`],
                ['Policy', q.policy ?? h('span', { class: 'muted' }, 'none')],
                ['Operator policy', q.operator_policy ?? h('span', { class: 'muted' }, 'none')],
                ['Effective policy definition', fmtTable(q.effective_policy_definition)],
                ['Arguments', fmtTable(q.arguments)],
                ['Consumers', fmtInt(q.consumers)],
            ]),
            h('table', { class: 'list depth', id: 'queue-depth' },
                h('thead', {}, h('tr', {}, ['', 'Total', 'Ready', 'Unacked', 'In memory', 'Paged out'].map((t) => h('th', { scope: 'col' }, t)))),
                h('tbody', {},
                    h('tr', { 'data-row': 'messages' }, h('th', { scope: 'row' }, 'Messages'),
                        [q.messages, q.messages_ready, q.messages_unacknowledged, q.messages_ram, q.messages_paged_out].map((v) => h('td', { class: 'num' }, fmtInt(v)))),
                    h('tr', { 'data-row': 'bytes' }, h('th', { scope: 'row' }, 'Bytes'),
                        [q.message_bytes, q.message_bytes_ready, q.message_bytes_unacknowledged, q.message_bytes_ram, q.message_bytes_paged_out].map((v) => h('td', { class: 'num' }, fmtBytes(v)))))));
        clear(charts).append(
            lineChart({ id: 'queue-depth-chart', title: 'Queued messages', series: DEPTH_SERIES, samples: depth.samples, format: fmtInt, windowMs: chartRangeMs() }),
            lineChart({ id: 'queue-rates', title: 'Message rates', series: RATE_SERIES, samples: rates.samples, windowMs: chartRangeMs() }));
        const cd = q.consumer_details ?? [];
        clear(consumers).append(cd.length === 0 ? h('p', { class: 'muted' }, 'No consumers.') : h('table', { class: 'list' },
            h('thead', {}, h('tr', {}, ['Channel', 'Consumer tag', 'Ack required', 'Exclusive', 'Prefetch', 'Arguments'].map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, cd.map((c) => h('tr', {},
                h('td', {}, c.channel_details?.connection_name
                    ? h('a', { href: route('connections', c.channel_details.connection_name) }, c.channel_details.name) : c.channel_details?.name ?? ''),
                h('td', {}, c.consumer_tag), h('td', {}, fmtBool(c.ack_required)), h('td', {}, fmtBool(c.exclusive)),
                h('td', { class: 'num' }, fmtInt(c.prefetch_count)), h('td', {}, fmtTable(c.arguments)))))));
        return true;
    }

    async function loadBindings() {
        try {
            clear(bindings).append(bindingsTable(await get(path`/queues/${vhost}/${name}/bindings`), loadBindings));
        } catch (e) {
            clear(bindings).append(h('p', { class: 'error' }, errorText(e)));
        }
    }

    page.append(info);
    if (!(await load())) return null;
    page.append(section('Charts', h('div', { class: 'page-tools' }, rangePicker(() => load())), charts), section('Consumers', consumers),
        section('Bindings', bindings, bindingForm({ vhost, destination: name, destinationType: 'queue', onChange: loadBindings })),
        section('Publish message', publishForm({ vhost, exchange: '', routingKey: name })),
        section('Get messages', getForm({ vhost, queue: name, onChange: load })),
        section('Purge and delete', h('div', { class: 'actions' },
            actionButton('Purge messages', `Remove every ready message of ${name}?`, async () => {
                await del(path`/queues/${vhost}/${name}/contents`);
                await load();
                return `Queue ${name} purged.`;
            }),
            actionButton('Delete queue', `Delete the queue ${name} and its messages?`, async () => {
                await del(path`/queues/${vhost}/${name}`);
                location.hash = '#/queues';
                return `Queue ${name} deleted.`;
            }))));
    await loadBindings();
    return { refresh: async () => { await load(); await loadBindings(); } };
}
