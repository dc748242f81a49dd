// The management UI: logs in, draws the navigation the user's tags allow, routes #/... to a
// page and refreshes the page on a timer. Each page is a module of js/pages/ with
// render(main, ctx) that may return {refresh()} (called on every tick while it is shown).

import { api, clearCredentials, get, hasCredentials, setCredentials } from './api.js';
import { clear, errorText, h } from './dom.js';
import { form } from './forms.js';
import * as overview from './pages/overview.js';
import * as connections from './pages/connections.js';
import * as exchanges from './pages/exchanges.js';
import * as queues from './pages/queues.js';
import * as admin from './pages/admin.js';
import * as definitions from './pages/definitions.js';

// may(can): whether the user's tags allow the page (RabbitMQ's rules, as the API applies
// them: the API refuses the rest anyway).
const routes = [
    { path: [], nav: 'overview', page: overview.render },
    { path: ['connections'], nav: 'connections', page: connections.renderList },
    { path: ['connections', ':name'], nav: 'connections', page: connections.renderOne },
    { path: ['channels'], nav: 'channels', page: connections.renderChannels },
    { path: ['exchanges'], nav: 'exchanges', page: exchanges.renderList },
    { path: ['exchanges', ':vhost', ':name'], nav: 'exchanges', page: exchanges.renderOne },
    { path: ['queues'], nav: 'queues', page: queues.renderList },
    { path: ['queues', ':vhost', ':name'], nav: 'queues', page: queues.renderOne },
    { path: ['admin', 'users'], nav: 'admin', sub: 'users', page: admin.renderUsers, may: (c) => c.admin },
    { path: ['admin', 'vhosts'], nav: 'admin', sub: 'vhosts', page: admin.renderVhosts, may: (c) => c.admin },
    { path: ['admin', 'permissions'], nav: 'admin', sub: 'permissions', page: admin.renderPermissions, may: (c) => c.admin },
    { path: ['admin', 'policies'], nav: 'admin', sub: 'policies', page: admin.renderPolicies, may: (c) => c.policymaker },
    { path: ['admin', 'limits'], nav: 'admin', sub: 'limits', page: admin.renderLimits, may: (c) => c.admin },
    { path: ['admin', 'definitions'], nav: 'admin', sub: 'definitions', page: definitions.render, may: (c) => c.admin },
];

const NAV = [
    ['overview', 'Overview', '#/'],
    ['connections', 'Connections', '#/connections'],
    ['channels', 'Channels', '#/channels'],
    ['exchanges', 'Exchanges', '#/exchanges'],
    ['queues', 'Queues', '#/queues'],
    ['admin', 'Admin', null],
];

export const ADMIN_NAV = [
    ['users', 'Users', '#/admin/users', (c) => c.admin],
    ['vhosts', 'Virtual hosts', '#/admin/vhosts', (c) => c.admin],
    ['permissions', 'Permissions', '#/admin/permissions', (c) => c.admin],
    ['policies', 'Policies', '#/admin/policies', (c) => c.policymaker],
    ['limits', 'Limits', '#/admin/limits', (c) => c.admin],
    ['definitions', 'Definitions', '#/admin/definitions', (c) => c.admin],
];

const REFRESH_KEY = 'warren.refresh';
let session = null; // {user, tags, can}
let current = null; // the page shown: {refresh}
let timer = null;

function tagsOf(whoami) {
    const t = whoami.tags;
    return new Set(Array.isArray(t) ? t : String(t ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

function capabilities(tags) {
    const admin = tags.has('administrator');
    return {
        admin,
        monitor: admin || tags.has('monitoring'),
        policymaker: admin || tags.has('policymaker'),
    };
}

function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    return raw === '' ? [] : raw.split('/').map((s) => decodeURIComponent(s));
}

function match(segments) {
    for (const r of routes) {
        if (r.path.length !== segments.length) continue;
        const params = {};
        if (r.path.every((p, i) => (p.startsWith(':') ? (params[p.slice(1)] = segments[i], true) : p === segments[i])))
            return { route: r, params };
    }
    return null;
}

function firstAdminPage(can) {
    const entry = ADMIN_NAV.find(([, , , may]) => may(can));
    return entry ? entry[2] : null;
}

function drawHeader(active) {
    const header = document.getElementById('top');
    const can = session.can;
    const refresh = h('select', {
        id: 'refresh', 'aria-label': 'Refresh every',
        onchange: () => { sessionStorage.setItem(REFRESH_KEY, refresh.value); startTimer(); },
    }, [[2, 'every 2 s'], [5, 'every 5 s'], [10, 'every 10 s'], [30, 'every 30 s'], [0, 'never']].map(([v, l]) =>
        h('option', { value: v, selected: String(v) === refreshSeconds().toString() }, `Refresh ${l}`)));
    const links = NAV.map(([key, label, href]) => {
        if (key === 'admin') {
            href = firstAdminPage(can);
            if (!href) return null;
        }
        return h('li', {}, h('a', { href, class: key === active ? 'active' : null, 'aria-current': key === active ? 'page' : null, 'data-nav': key }, label));
    });
    clear(header).append(
        h('div', { class: 'brand' }, h('img', { src: 'img/favicon.svg', alt: '', width: 28, height: 28 }), h('span', {}, 'Warren'),
            h('span', { class: 'node', id: 'node-name' })),
        h('nav', { 'aria-label': 'Sections' }, h('ul', {}, links)),
        h('div', { class: 'who' },
            h('span', { id: 'whoami' }, session.user, ' ', h('span', { class: 'tags' }, [...session.tags].join(', ') || 'no tags')),
            refresh,
            h('button', { type: 'button', class: 'small', id: 'logout', onclick: logout }, 'Log out')));
    get('/overview').then((o) => {
        const n = document.getElementById('node-name');
        if (n) n.textContent = `${o.cluster_name ?? o.node ?? ''} · ${o.product_name ?? 'Warren'} ${o.product_version ?? ''}`;
    }).catch(() => {});
}

function refreshSeconds() {
    const v = sessionStorage.getItem(REFRESH_KEY);
    return v === null ? 5 : Number(v);
}

function startTimer() {
    clearInterval(timer);
    timer = null;
    const s = refreshSeconds();
    if (s > 0) timer = setInterval(tick, s * 1000);
}

async function tick() {
    if (!session) return;
    await overview.sample();
    try {
        await current?.refresh?.();
    } catch (e) {
        // The page shows its own errors; a failed refresh is retried on the next tick.
    }
}

async function show() {
    const main = document.getElementById('main');
    if (!session) return;
    const m = match(parseHash());
    current = null;
    clear(main);
    if (!m) {
        main.append(h('div', { class: 'page', 'data-page': 'not-found' }, h('h1', {}, 'Not found'),
            h('p', {}, 'No such page. ', h('a', { href: '#/' }, 'Back to the overview.'))));
        drawHeader(null);
        return;
    }
    if (m.route.may && !m.route.may(session.can)) {
        main.append(h('div', { class: 'page', 'data-page': 'not-allowed' }, h('h1', {}, 'Not allowed'),
            h('p', {}, `User ${session.user} may not see this page.`)));
        drawHeader(m.route.nav);
        return;
    }
    drawHeader(m.route.nav);
    if (m.route.nav === 'admin') {
        main.append(h('nav', { class: 'subnav', 'aria-label': 'Admin' }, h('ul', {},
            ADMIN_NAV.filter(([, , , may]) => may(session.can)).map(([key, label, href]) =>
                h('li', {}, h('a', { href, class: key === m.route.sub ? 'active' : null }, label))))));
    }
    const page = h('div', { class: 'page', 'data-page': m.route.sub ?? m.route.nav });
    main.append(page);
    try {
        current = (await m.route.page(page, { session, params: m.params })) ?? null;
    } catch (e) {
        page.append(h('p', { class: 'error', role: 'alert' }, errorText(e)));
    }
}

function showLogin(message) {
    session = null;
    clearInterval(timer);
    clear(document.getElementById('top')).append(
        h('div', { class: 'brand' }, h('img', { src: 'img/favicon.svg', alt: '', width: 28, height: 28 }), h('span', {}, 'Warren')));
    const main = clear(document.getElementById('main'));
    const box = h('div', { class: 'login' },
        h('h1', {}, 'Warren management'),
        message ? h('p', { class: 'error', role: 'alert' }, message) : null,
        form({
            id: 'login',
            fields: [
                { name: 'username', label: 'Username', required: true, autocomplete: 'username' },
                { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' },
            ],
            submit: 'Log in',
            onSubmit: async ({ username, password }) => {
                setCredentials(username, password);
                try {
                    await login();
                } catch (e) {
                    clearCredentials();
                    if (e.status !== 401) throw e;
                    // The API says "Login failed" for a wrong password, or why else it refused.
                    throw new Error(e.reason && e.reason !== 'Login failed' ? `Login failed: ${e.reason}`
                        : 'Login failed: wrong user name or password');
                }
                return 'Logged in.';
            },
        }));
    main.append(box);
    box.querySelector('input')?.focus();
}

async function login() {
    const me = await api('GET', '/whoami');
    const tags = tagsOf(me);
    session = { user: me.name, tags, can: capabilities(tags) };
    await overview.sample();
    startTimer();
    await show();
}

function logout() {
    clearCredentials();
    session = null;
    clearInterval(timer);
    overview.forget();
    if (location.hash !== '' && location.hash !== '#/') location.hash = '#/';
    showLogin();
}

window.addEventListener('hashchange', () => show());
window.addEventListener('warren:unauthorised', (ev) => {
    if (!session) return;
    clearCredentials();
    showLogin(`Logged out: ${ev.detail.reason || 'the credentials were refused'}.`);
});

if (hasCredentials()) {
    login().catch((e) => showLogin(errorText(e)));
} else {
    showLogin();
}
