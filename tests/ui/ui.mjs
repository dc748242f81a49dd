// The management web UI in a real browser: Debian's chromium, headless, driven by
// playwright-core, against a warrend that ui.sh started (MGMT_URL, AMQP_HOST, AMQP_PORT), with
// AMQP traffic from amqp-tools. What a person would do: log in, watch a publish rate appear in
// the chart, create a queue, an exchange and a binding, publish and get a message, close a
// connection, import 10,000 queues from a definitions file and page through them, export
// the definitions, and log in as a user who may see less. Also, over plain HTTP: the files'
// types and cache headers, and that paths outside the UI's directory are refused.
// A screenshot of each page goes to SCREENSHOT_DIR for review.

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const MGMT_URL = process.env.MGMT_URL;
const AMQP_URL = `amqp://guest:guest@${process.env.AMQP_HOST}:${process.env.AMQP_PORT}`;
const SHOTS = process.env.SCREENSHOT_DIR || 'screenshots';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BULK = 10000; // queues imported, as the issue asks the lists to cope with

let passed = 0;
let failed = 0;

function check(ok, what) {
    if (ok) {
        passed++;
        console.log(`ok - ${what}`);
    } else {
        failed++;
        console.log(`not ok - ${what}`);
    }
}

// ---- Plain HTTP: the files themselves --------------------------------------------------

// A request whose path goes on the wire exactly as given (no normalisation of "..").
function raw(method, rawPath, headers = {}) {
    const u = new URL(MGMT_URL);
    return new Promise((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, method, path: rawPath, headers }, (res) => {
            let body = '';
            res.setEncoding('latin1');
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
    });
}

async function checkFiles() {
    const index = await raw('GET', '/');
    check(index.status === 200 && index.headers['content-type'] === 'text/html; charset=utf-8',
        `GET / is the UI's page (${index.status} ${index.headers['content-type']})`);
    check(/frame-ancestors 'none'/.test(index.headers['content-security-policy'] ?? '') &&
        index.headers['x-content-type-options'] === 'nosniff', 'the page may not be framed, nor its type guessed');
    for (const [p, type] of [['/js/app.js', 'text/javascript; charset=utf-8'], ['/css/warren.css', 'text/css; charset=utf-8'],
        ['/img/favicon.svg', 'image/svg+xml'], ['/index.html', 'text/html; charset=utf-8']]) {
        const r = await raw('GET', p);
        check(r.status === 200 && r.headers['content-type'] === type, `${p} is served as ${type} (${r.status} ${r.headers['content-type']})`);
    }
    const js = await raw('GET', '/js/app.js');
    check(js.headers['cache-control'] === 'no-cache' && /^"[0-9a-f]+-[0-9a-f]+"$/.test(js.headers.etag ?? ''),
        `files are revalidated with an ETag (${js.headers['cache-control']}, ${js.headers.etag})`);
    const again = await raw('GET', '/js/app.js', { 'If-None-Match': js.headers.etag });
    check(again.status === 304 && again.body === '', 'a copy still current is answered 304 without a body');
    const head = await raw('HEAD', '/js/app.js');
    check(head.status === 200 && head.body === '', 'HEAD answers without a body');
    const post = await raw('POST', '/');
    check(post.status === 405 && /GET/.test(post.headers.allow ?? ''), `POST / is refused with 405 (${post.status})`);
    check((await raw('GET', '/no-such-file.js')).status === 404, 'a missing file is 404');
    check((await raw('GET', '/js')).status === 404, 'a directory is not served');

    // Outside the UI's directory: /etc/passwd is three or more levels up from any www/.
    const up = '../../../../../../../..';
    for (const p of [`/${up}/etc/passwd`, `/js/${up}/etc/passwd`, '/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
        '/js/..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd', '/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
        '/js/%2e%2e/app.js', '/./index.html', '/.hidden', '/js//app.js', '/js/app.js%00.png', '/js\\..\\index.html',
        '/%', '/%zz']) {
        const r = await raw('GET', p);
        check(r.status === 400 && !/root:/.test(r.body), `${p} is refused with 400 (${r.status})`);
    }
    const api = await raw('GET', '/api/overview');
    check(api.status === 401, 'the API still wants credentials');
}

// ---- AMQP, through amqp-tools -------------------------------------------------------

async function declareQueue(name) {
    await run('amqp-declare-queue', ['--url', AMQP_URL, '-q', name]);
}

async function publish(key, body) {
    await run('amqp-publish', ['--url', AMQP_URL, '-r', key, '-b', body]);
}

// Publishes to key with publisher confirms (python3-pika: amqp-tools has no confirm mode),
// one message every 200 ms until stop() is called.
function publishingConfirmed(key) {
    const u = new URL(AMQP_URL);
    const script = [
        'import sys, time, pika',
        'c = pika.BlockingConnection(pika.ConnectionParameters(sys.argv[1], int(sys.argv[2])))',
        'ch = c.channel()',
        'ch.confirm_delivery()',
        'while True:',
        '    ch.basic_publish("", sys.argv[3], b"confirmed")',
        '    time.sleep(0.2)',
    ].join('\n');
    const child = spawn('/usr/bin/python3', ['-c', script, u.hostname, u.port, key], { stdio: ['ignore', 'ignore', 'inherit'] });
    return async () => {
        child.kill();
        await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.on('exit', r)));
    };
}

// Publishes to key every 200 ms until stop() is called.
function publishing(key) {
    let on = true;
    const done = (async () => {
        for (let i = 0; on; i++) {
            await publish(key, `rate ${i}`);
            await new Promise((r) => setTimeout(r, 200));
        }
    })();
    return async () => {
        on = false;
        await done;
    };
}

// ---- The browser ---------------------------------------------------------------------

async function shot(page, name) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function goTo(page, hash) {
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.locator('.page').first().waitFor();
}

async function submit(form, values) {
    for (const [label, value] of Object.entries(values)) {
        const field = form.getByLabel(label, { exact: true });
        if (typeof value === 'boolean') await field.setChecked(value);
        else if ((await field.evaluate((e) => e.tagName)) === 'SELECT') await field.selectOption(value);
        else await field.fill(value);
    }
    await form.locator('button[type=submit]').click();
    // The message is plain "form-msg" while the request runs, then "ok" or "error".
    const msg = form.locator('.form-msg.ok, .form-msg.error');
    await msg.waitFor();
    return { ok: (await msg.getAttribute('class')).includes('ok'), text: await msg.textContent() };
}

// Logs in; resolves to the error shown, or null once a page is shown.
async function login(page, user, password) {
    const form = page.locator('form#login');
    await form.getByLabel('Username').fill(user);
    await form.getByLabel('Password').fill(password);
    await form.locator('button[type=submit]').click();
    await page.locator('.page, form#login .form-msg.error').first().waitFor();
    const error = form.locator('.form-msg.error');
    return (await error.count()) ? error.textContent() : null;
}

function definitionsWithBulk() {
    const queues = [];
    for (let i = 0; i < BULK; i++) {
        queues.push({ name: `ui.bulk.${String(i).padStart(5, '0')}`, vhost: '/', durable: false, auto_delete: false, arguments: {} });
    }
    return {
        users: [{ name: 'ui-viewer', password: 'viewer-pw', tags: 'management' }],
        vhosts: [{ name: '/' }],
        permissions: [{ user: 'ui-viewer', vhost: '/', configure: '.*', write: '.*', read: '.*' }],
        exchanges: [{ name: 'ui.imported', vhost: '/', type: 'fanout', durable: true, auto_delete: false, internal: false, arguments: {} }],
        queues,
        bindings: [{ source: 'ui.imported', vhost: '/', destination: 'ui.bulk.00000', destination_type: 'queue', routing_key: '', arguments: {} }],
    };
}

async function main() {
    mkdirSync(SHOTS, { recursive: true });
    await checkFiles();

    const profile = mkdtempSync(join(tmpdir(), 'warren-ui-chromium.'));
    const work = mkdtempSync(join(tmpdir(), 'warren-ui-files.'));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1280, height: 900 },
        acceptDownloads: true,
    });
    const pageErrors = [];
    let consumer = null;
    try {
        const page = context.pages()[0] ?? await context.newPage();
        page.setDefaultTimeout(20000);
        page.on('pageerror', (e) => pageErrors.push(String(e)));
        page.on('dialog', (d) => d.accept());

        // Log in: a wrong password first.
        await page.goto(`${MGMT_URL}/`);
        await shot(page, '01-login');
        let r;
        const refused = await login(page, 'guest', 'wrong');
        check(/Login failed/.test(refused ?? ''), `a wrong password is refused on the page (${refused})`);
        check(await login(page, 'guest', 'guest') === null, 'guest logs in');
        await page.locator('.page[data-page=overview]').waitFor();
        check(true, 'guest logs in and sees the overview');
        check(await page.locator('nav a[data-nav=admin]').count() === 1, 'an administrator sees the Admin section');
        await page.locator('[data-node] [data-alarm=memory]').waitFor();
        check(true, 'the overview shows the node\'s figures and alarms');

        // A publish rate in the chart: messages through AMQP while the overview refreshes.
        await page.locator('#refresh').selectOption('2');
        await declareQueue('ui.rates');
        const stop = publishing('ui.rates');
        const stopConfirmed = publishingConfirmed('ui.rates');
        try {
            await page.waitForFunction(() => Number(document.querySelector('[data-chart=rates] li[data-series=publish]')?.dataset.peak) > 0, null, { timeout: 60000 });
            check(true, 'the publish rate of messages sent over AMQP shows in the rates chart');
        } catch {
            check(false, 'the publish rate of messages sent over AMQP shows in the rates chart');
        }
        try {
            await page.waitForFunction(() => Number(document.querySelector('[data-chart=rates] li[data-series=confirm]')?.dataset.peak) > 0, null, { timeout: 60000 });
            const shown = await page.locator('[data-chart=rates] li[data-series=confirm] b').textContent();
            check(shown !== 'n/a', `the confirm rate of a publisher in confirm mode shows in the rates chart (${shown})`);
        } catch {
            check(false, 'the confirm rate of a publisher in confirm mode shows in the rates chart');
        } finally {
            await stop();
            await stopConfirmed();
        }
        await page.waitForFunction(() => Number(document.querySelector('[data-chart=queued] li[data-series=total]')?.dataset.value) > 0);
        check(true, 'the queued messages show in their chart');
        await page.locator('#chart-range').selectOption('1');
        await page.waitForTimeout(2500); // one more sample, so that the lines are drawn
        await shot(page, '02-overview');

        // A queue, an exchange and a binding, through the forms.
        await goTo(page, '#/queues');
        r = await submit(page.locator('form#add-queue'), { Name: 'ui.q1', Durable: false });
        check(r.ok, `queue ui.q1 added through the form (${r.text})`);
        await page.getByRole('searchbox', { name: 'Filter queues' }).fill('ui.q1');
        await page.locator('table#queues a', { hasText: 'ui.q1' }).waitFor();
        check(true, 'the new queue is listed');
        await goTo(page, '#/exchanges');
        r = await submit(page.locator('form#add-exchange'), { Name: 'ui.x', Type: 'direct' });
        check(r.ok, `exchange ui.x added through the form (${r.text})`);
        await goTo(page, '#/exchanges/%2F/ui.x');
        r = await submit(page.locator('form#add-binding'), { To: 'queue', 'Destination name': 'ui.q1', 'Routing key': 'k1' });
        check(r.ok, `ui.x bound to ui.q1 with key k1 (${r.text})`);
        await page.locator('table.bindings tr[data-destination="ui.q1"]').waitFor();
        check(true, 'the binding is listed on the exchange\'s page');

        // Publish through the exchange and the binding; AMQP and the page both get it.
        r = await submit(page.locator('form#publish'), { 'Routing key': 'k1', Payload: 'hello from the browser' });
        check(r.ok && /published/.test(r.text) && !/not routed/.test(r.text), `a message published on the exchange's page is routed (${r.text})`);
        await shot(page, '03-exchange');
        const got = await run('amqp-get', ['--url', AMQP_URL, '-q', 'ui.q1']);
        check(got.stdout.includes('hello from the browser'), 'an AMQP client gets the message published in the browser');
        await goTo(page, '#/queues/%2F/ui.q1');
        await page.locator('table.bindings tr[data-source="ui.x"]').waitFor();
        check(true, 'the queue\'s page lists its binding from ui.x');
        r = await submit(page.locator('form#publish'), { Payload: 'second message' });
        check(r.ok, `a message published on the queue's page (${r.text})`);
        r = await submit(page.locator('form#get'), { 'Ack mode': 'ack_requeue_true' });
        const payload = await page.locator('#got-messages pre.payload').first().textContent();
        check(r.ok && payload === 'second message', `Get messages shows the message (${payload})`);
        await page.waitForFunction(() => document.querySelector('#queue-depth tr[data-row=messages] td')?.textContent === '1');
        check(true, 'the queue\'s depth shows the requeued message, in memory and paged out');
        await shot(page, '04-queue');

        // A connection, seen and closed.
        consumer = spawn('amqp-consume', ['--url', AMQP_URL, '-q', 'ui.q1', 'cat'], { stdio: ['ignore', 'ignore', 'ignore'] });
        const consumerExit = new Promise((resolve) => consumer.on('exit', resolve));
        await goTo(page, '#/connections');
        const connLink = page.locator('table#connections tbody a').first();
        await connLink.waitFor();
        await shot(page, '05-connections');
        await goTo(page, '#/channels');
        await page.locator('table#channels tbody tr td', { hasText: '(1)' }).first().waitFor();
        await shot(page, '06-channels');
        await goTo(page, '#/connections');
        await page.locator('table#connections tbody a').first().click();
        await page.locator('form#close-connection').waitFor();
        await shot(page, '07-connection');
        await page.locator('form#close-connection').getByLabel('Reason').fill('closed by the UI test');
        await page.locator('form#close-connection button[type=submit]').click();
        await page.locator('.page[data-page=connections] table#connections').waitFor();
        const code = await Promise.race([consumerExit, new Promise((res) => setTimeout(() => res('running'), 10000))]);
        check(code !== 'running', `Force close ends the client's connection (amqp-consume exited: ${code})`);
        consumer = null;

        // Import 10,000 queues from a file, then page and filter through them.
        const defsFile = join(work, 'definitions.json');
        writeFileSync(defsFile, JSON.stringify(definitionsWithBulk()));
        await goTo(page, '#/admin/definitions');
        await page.locator('form#import-definitions input[type=file]').setInputFiles(defsFile);
        await page.locator('form#import-definitions button[type=submit]').click();
        await page.locator('form#import-definitions .form-msg.ok').waitFor({ timeout: 60000 });
        check(true, 'a definitions file with 10,000 queues is imported through the page');
        await shot(page, '08-definitions');
        const download = page.waitForEvent('download');
        await page.locator('form#export-definitions button[type=submit]').click();
        const exported = JSON.parse(readFileSync(await (await download).path(), 'utf8'));
        check(exported.queues?.some((q) => q.name === 'ui.q1') && exported.bindings?.some((b) => b.source === 'ui.x'),
            'the exported definitions hold the queue and the binding made in the browser');

        await goTo(page, '#/queues');
        const list = page.locator('.list-view');
        await page.waitForFunction(() => Number(document.querySelector('.list-view')?.dataset.total) >= 10000);
        const rows = await page.locator('table#queues tbody tr').count();
        check(rows === 100, `the queues list shows a page of 100 of ${await list.getAttribute('data-total')} (${rows} rows)`);
        check(/page 1 of 10[0-9]/.test(await page.locator('.page-label').textContent()), 'the list has a hundred pages');
        await page.getByRole('button', { name: 'Next ›' }).click();
        await page.locator('.page-label', { hasText: 'page 2 of' }).waitFor();
        check(true, 'the next page opens');
        await shot(page, '09-queues');
        await page.getByRole('searchbox', { name: 'Filter queues' }).fill('bulk.09999');
        await page.waitForFunction(() => document.querySelector('.list-view')?.dataset.filtered === '1');
        check(await page.locator('table#queues a', { hasText: 'ui.bulk.09999' }).count() === 1, 'the name filter finds one queue out of 10,000');
        await page.getByRole('searchbox', { name: 'Filter queues' }).fill('');
        await page.locator('table#queues th[data-key=messages] button').click();
        await page.locator('table#queues th[data-key=messages][aria-sort=ascending]').waitFor();
        check(true, 'a column header sorts the list');

        // Sorted by the API across all 100 pages: a few imported queues get messages, then
        // the list of ui.bulk queues sorted by messages, descending, starts with them, most
        // first; the rest follow in reverse name order (RabbitMQ's: ties by vhost and name,
        // the whole order reversed), onto page 2.
        for (const [name, n] of [['ui.bulk.09000', 3], ['ui.bulk.05000', 2], ['ui.bulk.00001', 1]]) {
            for (let i = 0; i < n; i++) await publish(name, `sorted ${i}`);
        }
        const names = () => page.locator('table#queues tbody tr td:nth-child(2)').allTextContents();
        await page.getByRole('searchbox', { name: 'Filter queues' }).fill('ui.bulk');
        await page.locator('table#queues th[data-key=messages] button').click();
        await page.locator('table#queues th[data-key=messages][aria-sort=descending]').waitFor();
        try {
            await page.waitForFunction(() => document.querySelector('.list-view')?.dataset.filtered === '10000' &&
                document.querySelector('table#queues tbody tr td:nth-child(2)')?.textContent === 'ui.bulk.09000', null, { timeout: 60000 });
        } catch {
            // checked below, with what is shown
        }
        const first = await names();
        check(first.slice(0, 5).join(' ') === 'ui.bulk.09000 ui.bulk.05000 ui.bulk.00001 ui.bulk.09999 ui.bulk.09998' && first.length === 100,
            `sorted by messages, descending, across 10,000 queues: page 1 starts ${first.slice(0, 5).join(' ')}`);
        await page.getByRole('button', { name: 'Next ›' }).click();
        await page.locator('.page-label', { hasText: 'page 2 of 100' }).waitFor();
        await page.waitForFunction(() => document.querySelector('table#queues tbody tr td:nth-child(2)')?.textContent !== 'ui.bulk.09000');
        const second = await names();
        check(second[0] === 'ui.bulk.09902' && second[99] === 'ui.bulk.09803',
            `page 2 goes on in the same order (${second[0]} … ${second[99]})`);
        await shot(page, '09-queues-sorted');
        await page.getByRole('searchbox', { name: 'Filter queues' }).fill('');

        await goTo(page, '#/exchanges');
        await page.locator('table#exchanges tbody tr').first().waitFor();
        await shot(page, '10-exchanges');

        // Admin pages: a policy and a limit through their forms.
        await goTo(page, '#/admin/users');
        await page.locator('table#users td', { hasText: 'ui-viewer' }).waitFor();
        await shot(page, '11-users');
        await goTo(page, '#/admin/vhosts');
        r = await submit(page.locator('form#add-vhost'), { Name: 'ui-vhost', Description: 'made by the UI test' });
        check(r.ok, `a vhost is added (${r.text})`);
        await page.locator('table#vhosts td', { hasText: 'ui-vhost' }).waitFor();
        await shot(page, '12-vhosts');
        await goTo(page, '#/admin/permissions');
        r = await submit(page.locator('form#set-permissions'), { User: 'ui-viewer', 'Virtual host': 'ui-vhost', 'Read regexp': '^ui' });
        check(r.ok, `permissions are set (${r.text})`);
        await page.locator('table#permissions td', { hasText: '^ui' }).waitFor();
        await shot(page, '13-permissions');
        await goTo(page, '#/admin/policies');
        r = await submit(page.locator('form#add-policy'), { Name: 'ui-limit', Pattern: '^ui\\.q', 'Apply to': 'queues', Definition: 'max-length = 1000' });
        check(r.ok, `a policy is added (${r.text})`);
        await page.locator('table#policies td', { hasText: 'ui-limit' }).waitFor();
        await shot(page, '14-policies');
        await goTo(page, '#/admin/limits');
        r = await submit(page.locator('form#set-limit'), { 'Virtual host': 'ui-vhost', Limit: 'max-queues', Value: '50' });
        check(r.ok, `a vhost limit is set (${r.text})`);
        await page.locator('table#limits td', { hasText: 'max-queues' }).waitFor();
        await shot(page, '15-limits');
        await goTo(page, '#/queues/%2F/ui.q1');
        await page.locator('.queue-facts', { hasText: 'ui-limit' }).waitFor();
        check(true, 'the queue\'s page shows the policy that applies to it');

        // A user tagged management only: no Admin, no node figures, its own connections.
        await page.locator('#logout').click();
        check(await login(page, 'ui-viewer', 'viewer-pw') === null, 'ui-viewer logs in');
        await page.locator('.page[data-page=overview]').waitFor();
        check(await page.locator('nav a[data-nav=admin]').count() === 0, 'a management user sees no Admin section');
        await page.locator('.nodes', { hasText: 'monitoring' }).waitFor();
        check(true, 'a management user is told the node figures need the monitoring tag');
        await shot(page, '16-management-user');
        await goTo(page, '#/admin/users');
        check(await page.locator('h1', { hasText: 'Not allowed' }).count() === 1, 'a management user may not open the users page');
    } finally {
        if (consumer) consumer.kill();
        await context.close();
        rmSync(profile, { recursive: true, force: true });
        rmSync(work, { recursive: true, force: true });
    }
    check(pageErrors.length === 0, `no script error in the page${pageErrors.length ? `: ${pageErrors.join('; ')}` : ''}`);
    console.log(`screenshots in ${SHOTS}`);
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
    console.log(`not ok - ${e.stack ?? e}`);
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exit(1);
});
