// Admin: users, virtual hosts, permissions, policies and limits. Administrators see all of
// it; policymakers see the policies (app.js hides the rest, and the API refuses it anyway).

import { del, get, path, put } from '../api.js';
import { fmtInt, fmtTable, h, section } from '../dom.js';
import { actionButton, form, parseTable, vhostNames } from '../forms.js';
import { clientSource, listView } from '../list.js';

const TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'impersonator'];

function tagList(t) {
    return Array.isArray(t) ? t.join(', ') : String(t ?? '');
}

export async function renderUsers(page, { session }) {
    const list = listView({
        id: 'users', noun: 'users',
        source: clientSource(() => get('/users')),
        columns: [
            { label: 'Name', key: 'name' },
            { label: 'Tags', key: 'tags', render: (u) => tagList(u.tags) },
            { label: 'Password', render: (u) => (u.password_hash ? 'yes' : h('span', { class: 'muted' }, 'none')) },
            {
                label: '', render: (u) => (u.name === session.user ? h('span', { class: 'muted' }, 'you') : actionButton('Delete', `Delete the user ${u.name}?`, async () => {
                    await del(path`/users/${u.name}`);
                    list.reload();
                    return `User ${u.name} deleted.`;
                }, 'small danger')),
            },
        ],
    });
    page.append(h('h1', {}, 'Users'), list.el,
        section('Add or update a user', form({
            id: 'add-user', submit: 'Add user',
            fields: [
                { name: 'name', label: 'Username', required: true },
                { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', help: 'Empty: the user can log in only without a password (for example with a client certificate).' },
                { name: 'tags', label: 'Tags', placeholder: TAGS.join(', '), help: 'Comma-separated: administrator, monitoring, policymaker, management.' },
            ],
            onSubmit: async (v) => {
                const body = { tags: v.tags.split(',').map((t) => t.trim()).filter(Boolean).join(',') };
                if (v.password !== '') body.password = v.password;
                else body.password_hash = '';
                await put(path`/users/${v.name}`, body);
                list.reload();
                return `User ${v.name} saved.`;
            },
        })));
    return { refresh: list.reload };
}

export async function renderVhosts(page) {
    const list = listView({
        id: 'vhosts', noun: 'virtual hosts',
        source: clientSource(() => get('/vhosts')),
        columns: [
            { label: 'Name', key: 'name' },
            { label: 'Description', key: 'description', render: (v) => v.description ?? '' },
            { label: 'Tags', key: 'tags', render: (v) => tagList(v.tags) },
            { label: 'Ready', key: 'messages_ready', class: 'num', render: (v) => fmtInt(v.messages_ready) },
            { label: 'Unacked', key: 'messages_unacknowledged', class: 'num', render: (v) => fmtInt(v.messages_unacknowledged) },
            { label: 'Total', key: 'messages', class: 'num', render: (v) => fmtInt(v.messages) },
            {
                label: '', render: (v) => actionButton('Delete', `Delete the virtual host ${v.name} with all its exchanges, queues and messages?`, async () => {
                    await del(path`/vhosts/${v.name}`);
                    list.reload();
                    return `Virtual host ${v.name} deleted.`;
                }, 'small danger'),
            },
        ],
    });
    page.append(h('h1', {}, 'Virtual hosts'), list.el,
        section('Add a new virtual host', form({
            id: 'add-vhost', submit: 'Add virtual host',
            fields: [
                { name: 'name', label: 'Name', required: true },
                { name: 'description', label: 'Description' },
                { name: 'tags', label: 'Tags', placeholder: 'comma-separated' },
            ],
            onSubmit: async (v) => {
                await put(path`/vhosts/${v.name}`, { description: v.description, tags: v.tags });
                list.reload();
                return `Virtual host ${v.name} added.`;
            },
        })));
    return { refresh: list.reload };
}

export async function renderPermissions(page) {
    const list = listView({
        id: 'permissions', noun: 'permissions',
        source: clientSource(() => get('/permissions'), 'user'),
        columns: [
            { label: 'User', key: 'user' },
            { label: 'Virtual host', key: 'vhost' },
            { label: 'Configure', key: 'configure' },
            { label: 'Write', key: 'write' },
            { label: 'Read', key: 'read' },
            {
                label: '', render: (p) => actionButton('Clear', `Remove ${p.user}'s permissions in ${p.vhost}?`, async () => {
                    await del(path`/permissions/${p.vhost}/${p.user}`);
                    list.reload();
                    return 'Permissions cleared.';
                }, 'small danger'),
            },
        ],
    });
    const [users, vhosts] = await Promise.all([get('/users').then((us) => us.map((u) => u.name)), vhostNames()]);
    page.append(h('h1', {}, 'Permissions'), list.el,
        section('Set permissions', form({
            id: 'set-permissions', submit: 'Set permission',
            fields: [
                { name: 'user', label: 'User', type: 'select', options: users },
                { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts },
                { name: 'configure', label: 'Configure regexp', value: '.*' },
                { name: 'write', label: 'Write regexp', value: '.*' },
                { name: 'read', label: 'Read regexp', value: '.*' },
            ],
            onSubmit: async (v) => {
                await put(path`/permissions/${v.vhost}/${v.user}`, { configure: v.configure, write: v.write, read: v.read });
                list.reload();
                return `Permissions of ${v.user} in ${v.vhost} set.`;
            },
        })));
    return { refresh: list.reload };
}

export async function renderPolicies(page) {
    const list = listView({
        id: 'policies', noun: 'policies',
        source: clientSource(() => get('/policies')),
        columns: [
            { label: 'Virtual host', key: 'vhost' },
            { label: 'Name', key: 'name' },
            { label: 'Pattern', key: 'pattern' },
            { label: 'Apply to', key: 'apply-to' },
            { label: 'Definition', render: (p) => fmtTable(p.definition) },
            { label: 'Priority', key: 'priority', class: 'num' },
            {
                label: '', render: (p) => actionButton('Delete', `Delete the policy ${p.name}?`, async () => {
                    await del(path`/policies/${p.vhost}/${p.name}`);
                    list.reload();
                    return `Policy ${p.name} deleted.`;
                }, 'small danger'),
            },
        ],
    });
    const vhosts = await vhostNames();
    page.append(h('h1', {}, 'Policies'), list.el,
        section('Add or update a policy', form({
            id: 'add-policy', submit: 'Add policy',
            fields: [
                { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts },
                { name: 'name', label: 'Name', required: true },
                { name: 'pattern', label: 'Pattern', required: true, placeholder: '^amq\\.' },
                { name: 'apply_to', label: 'Apply to', type: 'select', options: [['all', 'Exchanges and queues'], ['queues', 'Queues'], ['exchanges', 'Exchanges']] },
                { name: 'priority', label: 'Priority', type: 'number', value: '0' },
                { name: 'definition', label: 'Definition', type: 'textarea', rows: 3, required: true, placeholder: 'max-length = 1000\nmessage-ttl = 60000' },
            ],
            onSubmit: async (v) => {
                await put(path`/policies/${v.vhost}/${v.name}`, {
                    pattern: v.pattern, 'apply-to': v.apply_to, priority: Number(v.priority) || 0,
                    definition: parseTable(v.definition),
                });
                list.reload();
                return `Policy ${v.name} saved.`;
            },
        })));
    return { refresh: list.reload };
}

export async function renderLimits(page) {
    const fetchAll = async () => (await get('/vhost-limits')).flatMap((l) =>
        Object.entries(l.value ?? {}).map(([limit, value]) => ({ vhost: l.vhost, limit, value })));
    const list = listView({
        id: 'limits', noun: 'limits',
        source: clientSource(fetchAll, 'vhost'),
        columns: [
            { label: 'Virtual host', key: 'vhost' },
            { label: 'Limit', key: 'limit' },
            { label: 'Value', key: 'value', class: 'num' },
            {
                label: '', render: (l) => actionButton('Clear', `Remove the limit ${l.limit} of ${l.vhost}?`, async () => {
                    await del(path`/vhost-limits/${l.vhost}/${l.limit}`);
                    list.reload();
                    return 'Limit cleared.';
                }, 'small danger'),
            },
        ],
        empty: 'No virtual host has limits.',
    });
    const vhosts = await vhostNames();
    page.append(h('h1', {}, 'Virtual host limits'), list.el,
        section('Set a limit', form({
            id: 'set-limit', submit: 'Set limit',
            fields: [
                { name: 'vhost', label: 'Virtual host', type: 'select', options: vhosts },
                { name: 'limit', label: 'Limit', type: 'select', options: [['max-connections', 'Max connections'], ['max-queues', 'Max queues']] },
                { name: 'value', label: 'Value', type: 'number', required: true, help: '-1 for no limit' },
            ],
            onSubmit: async (v) => {
                await put(path`/vhost-limits/${v.vhost}/${v.limit}`, { value: Number(v.value) });
                list.reload();
                return `Limit ${v.limit} of ${v.vhost} set.`;
            },
        })));
    return { refresh: list.reload };
}
