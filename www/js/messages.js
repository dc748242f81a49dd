// What the exchange and queue pages share: bindings, publishing a message, getting
// messages.

import { del, path, post } from './api.js';
import { fmtTable, h, route } from './dom.js';
import { actionButton, form, parseTable } from './forms.js';

function objectLink(kind, vhost, name) {
    if (kind === 'exchange' && name === '') return h('span', { class: 'muted' }, '(AMQP default)');
    return h('a', { href: route(kind === 'queue' ? 'queues' : 'exchanges', vhost, name) }, name);
}

// A table of bindings; onChange() is called after one is removed. The default exchange's
// implicit bindings cannot be removed.
export function bindingsTable(bindings, onChange) {
    if (bindings.length === 0) return h('p', { class: 'muted' }, 'No bindings.');
    return h('table', { class: 'list bindings' },
        h('thead', {}, h('tr', {}, ['From', 'To', 'Routing key', 'Arguments', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, bindings.map((b) => h('tr', { 'data-source': b.source, 'data-destination': b.destination },
            h('td', {}, objectLink('exchange', b.vhost, b.source)),
            h('td', {}, objectLink(b.destination_type, b.vhost, b.destination)),
            h('td', {}, b.routing_key),
            h('td', {}, fmtTable(b.arguments)),
            h('td', {}, b.source === '' ? null : actionButton('Unbind', `Remove the binding from ${b.source} to ${b.destination}?`, async () => {
                const kind = b.destination_type === 'queue' ? 'q' : 'e';
                await del(path`/bindings/${b.vhost}/e/${b.source}/${kind}/${b.destination}/${b.properties_key}`);
                onChange?.();
                return 'Binding removed.';
            }, 'small danger'))))));
}

// Adds a binding: from the exchange `source` (or one typed in), to `dest` (or one typed in).
export function bindingForm({ vhost, source, destination, destinationType, onChange }) {
    const fields = [];
    if (source === undefined) fields.push({ name: 'source', label: 'From exchange', required: true });
    if (destination === undefined) {
        fields.push({ name: 'type', label: 'To', type: 'select', options: [['queue', 'Queue'], ['exchange', 'Exchange']] });
        fields.push({ name: 'destination', label: 'Destination name', required: true });
    }
    fields.push({ name: 'routing_key', label: 'Routing key' });
    fields.push({ name: 'arguments', label: 'Arguments', type: 'textarea', rows: 2, placeholder: 'x-match = any' });
    return form({
        id: 'add-binding', title: 'Add binding', submit: 'Bind', fields,
        onSubmit: async (v) => {
            const src = source ?? v.source;
            const dst = destination ?? v.destination;
            const kind = (destinationType ?? v.type) === 'queue' ? 'q' : 'e';
            await post(path`/bindings/${vhost}/e/${src}/${kind}/${dst}`, { routing_key: v.routing_key, arguments: parseTable(v.arguments) });
            onChange?.();
            return `Bound ${src} to ${dst}.`;
        },
    });
}

// Publishes through `exchange` (the default exchange for a queue, with its name as key).
export function publishForm({ vhost, exchange, routingKey }) {
    return form({
        id: 'publish', submit: 'Publish message', resetOnSuccess: false,
        fields: [
            { name: 'routing_key', label: 'Routing key', value: routingKey ?? '' },
            { name: 'delivery_mode', label: 'Delivery mode', type: 'select', options: [['1', '1 – non-persistent'], ['2', '2 – persistent']] },
            { name: 'headers', label: 'Headers', type: 'textarea', rows: 2, placeholder: 'key = value' },
            { name: 'properties', label: 'Properties', type: 'textarea', rows: 2, placeholder: 'content_type = text/plain' },
            { name: 'payload', label: 'Payload', type: 'textarea', rows: 4 },
        ],
        onSubmit: async (v) => {
            const properties = { ...parseTable(v.properties), delivery_mode: Number(v.delivery_mode) };
            const headers = parseTable(v.headers);
            if (Object.keys(headers).length) properties.headers = headers;
            const r = await post(path`/exchanges/${vhost}/${exchange === '' ? 'amq.default' : exchange}/publish`, {
                properties, routing_key: v.routing_key, payload: v.payload, payload_encoding: 'string',
            });
            return r?.routed === false ? 'Message published, but not routed to any queue.' : 'Message published.';
        },
    });
}

// Gets messages from a queue and shows them under the form.
export function getForm({ vhost, queue, onChange }) {
    const out = h('div', { class: 'got', id: 'got-messages' });
    const f = form({
        id: 'get', submit: 'Get message(s)', resetOnSuccess: false,
        fields: [
            {
                name: 'ackmode', label: 'Ack mode', type: 'select', options: [
                    ['ack_requeue_true', 'Nack message, requeue true'],
                    ['reject_requeue_true', 'Reject, requeue true'],
                    ['ack_requeue_false', 'Automatic ack'],
                    ['reject_requeue_false', 'Reject, requeue false'],
                ],
            },
            { name: 'encoding', label: 'Encoding', type: 'select', options: [['auto', 'Auto string / base64'], ['base64', 'base64']] },
            { name: 'count', label: 'Messages', type: 'number', value: '1', min: 1 },
        ],
        onSubmit: async (v) => {
            const msgs = await post(path`/queues/${vhost}/${queue}/get`, {
                count: Number(v.count) || 1, ackmode: v.ackmode, encoding: v.encoding, truncate: 50000,
            });
            out.replaceChildren(...msgs.map((m, i) => h('div', { class: 'message', 'data-index': i },
                h('h4', {}, `Message ${i + 1}`),
                h('table', { class: 'facts' }, h('tbody', {},
                    h('tr', {}, h('th', {}, 'Exchange'), h('td', {}, m.exchange === '' ? '(AMQP default)' : m.exchange)),
                    h('tr', {}, h('th', {}, 'Routing key'), h('td', {}, m.routing_key)),
                    h('tr', {}, h('th', {}, 'Redelivered'), h('td', {}, m.redelivered ? 'yes' : 'no')),
                    h('tr', {}, h('th', {}, 'Remaining'), h('td', {}, String(m.message_count))),
                    h('tr', {}, h('th', {}, 'Properties'), h('td', {}, fmtTable(m.properties))),
                    h('tr', {}, h('th', {}, 'Payload'), h('td', {},
                        h('small', { class: 'muted' }, `${m.payload_bytes} bytes, encoding ${m.payload_encoding}`),
                        h('pre', { class: 'payload' }, m.payload))))))));
            onChange?.();
            return msgs.length === 0 ? 'Queue is empty.' : `${msgs.length} message(s).`;
        },
    });
    return h('div', {}, f, out);
}
