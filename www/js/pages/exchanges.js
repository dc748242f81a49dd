// Exchanges: the list (paged by the API), adding one, and one exchange with its bindings, a
// form to bind it and one to publish through it.

import { del, get, path, put } from '../api.js';
import { clear, errorText, facts, fmtBool, fmtName, fmtTable, h, route, section } from '../dom.js';
import { bindingForm, bindingsTable, publishForm } from '../messages.js';
import { actionButton, form, parseTable, vhostNames, vhostPicker } from '../forms.js';
import { listView, serverSource } from '../list.js';

function features(x) {
    return [x.durable ? 'D' : null, x.auto_delete ? 'AD' : null, x.internal ? 'I' : null,
        Object.keys(x.arguments ?? {}).length ? 'Args' : null].filter(Boolean).join(' ');
}

export async function renderList(page) {
    const holder = h('div');
    let list;
    function build(vhost) {
        list = listView({
            id: 'exchanges', noun: 'exchanges',
            source: serverSource(vhost ? path`/exchanges/${vhost}` : '/exchanges'),
            columns: [
                { label: 'Virtual host', key: 'vhost' },
                { label: 'Name', key: 'name', render: (x) => h('a', { href: route('exchanges', x.vhost, x.name === '' ? 'amq.default' : x.name) }, fmtName(x.name)) },
                { label: 'Type', key: 'type' },
                { label: 'Features', render: features },
                { label: 'Policy', key: 'policy', render: (x) => x.policy ?? '' },
            ],
        });
        clear(holder).append(list.el);
    }
    build('');
    const types = await get('/overview').then((o) => (o.exchange_types ?? []).map((t) => t.name)).catch(() => ['direct', 'fanout', 'headers', 'topic']);
    const vhosts = await vhostNames().catch(() => ['/']);
    page.append(h('h1', {}, 'Exchanges'), h('div', { class: 'page-tools' }, vhostPicker(build)), holder,
        section('Add a new exchange', form({
            id: 'add-exchange', submit: 'Add exchange',
            fields: [
                { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts },
                { name: 'name', label: 'Name', required: true },
                { name: 'type', label: 'Type', type: 'select', options: types },
                { name: 'durable', label: 'Durable', type: 'checkbox', value: true },
                { name: 'auto_delete', label: 'Auto delete', type: 'checkbox' },
                { name: 'internal', label: 'Internal', type: 'checkbox' },
                { name: 'arguments', label: 'Arguments', type: 'textarea', rows: 2, placeholder: 'alternate-exchange = my-ae' },
            ],
            onSubmit: async (v) => {
                await put(path`/exchanges/${v.vhost}/${v.name}`, {
                    type: v.type, durable: v.durable, auto_delete: v.auto_delete, internal: v.internal,
                    arguments: parseTable(v.arguments),
                });
                list.reload();
                return `Exchange ${v.name} added.`;
            },
        })));
    return { refresh: () => list.reload() };
}

export async function renderOne(page, { params }) {
    const { vhost } = params;
    const name = params.name === 'amq.default' ? '' : params.name;
    const urlName = name === '' ? 'amq.default' : name;
    const info = h('div');
    const bindings = h('div');
    page.append(h('h1', {}, 'Exchange ', h('span', { class: 'name' }, fmtName(name)), h('span', { class: 'in' }, ` in ${vhost}`)), info);

    async function loadBindings() {
        try {
            const [out, into] = await Promise.all([
                get(path`/exchanges/${vhost}/${urlName}/bindings/source`),
                get(path`/exchanges/${vhost}/${urlName}/bindings/destination`),
            ]);
            clear(bindings).append(h('h3', {}, 'From this exchange'), bindingsTable(out, loadBindings),
                h('h3', {}, 'To this exchange'), bindingsTable(into, loadBindings));
        } catch (e) {
            clear(bindings).append(h('p', { class: 'error' }, errorText(e)));
        }
    }

    let x;
    try {
        x = await get(path`/exchanges/${vhost}/${urlName}`);
    } catch (e) {
        page.append(h('p', { class: 'error', role: 'alert' }, e.status === 404 ? 'No such exchange.' : errorText(e)));
        return null;
    }
    info.append(facts([
        ['Type', x.type],
        ['Durable', fmtBool(x.durable)],
        ['Auto delete', fmtBool(x.auto_delete)],
        ['Internal', fmtBool(x.internal)],
        ['Policy', x.policy ?? h('span', { class: 'muted' }, 'none')],
        ['Arguments', fmtTable(x.arguments)],
    ]));
    page.append(section('Bindings', bindings,
        name === '' ? null : bindingForm({ vhost, source: name, onChange: loadBindings })));
    page.append(section('Publish message', publishForm({ vhost, exchange: name })));
    if (name !== '' && !name.startsWith('amq.')) {
        page.append(section('Delete this exchange', actionButton('Delete', `Delete the exchange ${name}?`, async () => {
            await del(path`/exchanges/${vhost}/${name}`);
            location.hash = '#/exchanges';
            return `Exchange ${name} deleted.`;
        })));
    }
    await loadBindings();
    return { refresh: loadBindings };
}
