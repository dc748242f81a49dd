// Connections (and one connection with its channels, which may be closed) and channels.
// Users tagged monitoring or administrator see everyone's; the others see their own.

import { del, get, path } from '../api.js';
import { clear, errorText, facts, fmtBool, fmtInt, fmtTable, h, route, section } from '../dom.js';
import { form } from '../forms.js';
import { clientSource, listView } from '../list.js';

function connLink(name) {
    return h('a', { href: route('connections', name) }, name);
}

export async function renderList(page) {
    const list = listView({
        id: 'connections', noun: 'connections',
        source: clientSource(() => get('/connections')),
        columns: [
            { label: 'Name', key: 'name', render: (c) => connLink(c.name) },
            { label: 'User', key: 'user' },
            { label: 'Virtual host', key: 'vhost' },
            { label: 'Client', key: 'client_properties.product', render: (c) => c.client_properties?.product ?? '' },
            { label: 'Protocol', key: 'protocol' },
            { label: 'TLS', key: 'ssl', render: (c) => fmtBool(c.ssl) },
            { label: 'Channels', key: 'channels', class: 'num', render: (c) => fmtInt(c.channels) },
            { label: 'State', key: 'state' },
        ],
        empty: 'No client is connected.',
    });
    page.append(h('h1', {}, 'Connections'), list.el);
    return { refresh: list.reload };
}

function channelColumns(withConnection) {
    return [
        { label: 'Channel', key: 'name', render: (c) => c.name },
        withConnection ? { label: 'Connection', key: 'connection_details.name', render: (c) => connLink(c.connection_details?.name ?? '') } : null,
        { label: 'User', key: 'user' },
        { label: 'Virtual host', key: 'vhost' },
        { label: 'Mode', key: 'confirm', render: (c) => [c.confirm ? 'confirm' : null, c.transactional ? 'transactional' : null].filter(Boolean).join(', ') },
        { label: 'Prefetch', key: 'prefetch_count', class: 'num', render: (c) => fmtInt(c.prefetch_count) },
        { label: 'Consumers', key: 'consumer_count', class: 'num', render: (c) => fmtInt(c.consumer_count) },
        { label: 'Unacked', key: 'messages_unacknowledged', class: 'num', render: (c) => fmtInt(c.messages_unacknowledged) },
        { label: 'State', key: 'state' },
    ].filter(Boolean);
}

export async function renderChannels(page) {
    const list = listView({
        id: 'channels', noun: 'channels',
        source: clientSource(() => get('/channels')),
        columns: channelColumns(true),
        empty: 'No channel is open.',
    });
    page.append(h('h1', {}, 'Channels'), list.el);
    return { refresh: list.reload };
}

export async function renderOne(page, { session, params }) {
    const name = params.name;
    const info = h('div');
    const channels = listView({
        id: 'connection-channels', noun: 'channels', pageSize: 20,
        source: clientSource(() => get(path`/connections/${name}/channels`)),
        columns: channelColumns(false),
        empty: 'No channel is open.',
    });
    page.append(h('h1', {}, 'Connection ', h('span', { class: 'name' }, name)), info,
        section('Channels', channels.el));

    let conn = null;
    async function load() {
        try {
            conn = await get(path`/connections/${name}`);
        } catch (e) {
            clear(info).append(h('p', { class: 'error', role: 'alert' }, e.status === 404 ? 'This connection is closed.' : errorText(e)));
            return;
        }
        clear(info).append(facts([
            ['User', conn.user],
            ['Virtual host', conn.vhost],
            ['Peer', `${conn.peer_host}:${conn.peer_port}`],
            ['Protocol', conn.protocol],
            ['TLS', fmtBool(conn.ssl)],
            ['State', conn.state],
            ['Channels', fmtInt(conn.channels)],
            ['Frame max', fmtInt(conn.frame_max)],
            ['Heartbeat', conn.timeout !== undefined ? `${conn.timeout} s` : '–'],
            ['Client properties', fmtTable(conn.client_properties)],
        ]));
        // Administrators close any connection, others their own (the API decides).
        if (session.can.admin || conn.user === session.user) {
            info.append(section('Close this connection', form({
                id: 'close-connection',
                fields: [{ name: 'reason', label: 'Reason', value: 'Closed via management UI' }],
                submit: 'Force close',
                onSubmit: async ({ reason }) => {
                    if (!window.confirm(`Close the connection ${name}?`)) return 'Not closed.';
                    await del(path`/connections/${name}`, { 'X-Reason': reason });
                    location.hash = '#/connections';
                    return 'Closed.';
                },
            })));
        }
    }
    await load();
    return {
        refresh: async () => {
            // Redrawn only while it is open: the close form keeps what is typed in it.
            if (conn) await get(path`/connections/${name}`).catch(() => load());
            channels.reload();
        },
    };
}
