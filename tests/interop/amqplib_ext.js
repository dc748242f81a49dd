// RabbitMQ's protocol extensions and dead-lettering as amqplib (Node.js, promise API) sees
// them: a confirm channel (acks, and a nack from a full queue with x-overflow
// reject-publish), mandatory returns through the 'return' event, direct reply-to RPC across
// two connections, and dead-lettered messages with their x-death history (rejected,
// expired, maxlen).
//
// Environment: AMQP_HOST and AMQP_PORT. Prints one line per check; exits 1 at the first
// failure. amqplib comes from tests/interop/node_modules (setup.sh installs it).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const amqp = require('amqplib');

const HOST = process.env.AMQP_HOST || '127.0.0.1';
const PORT = Number(process.env.AMQP_PORT || 5672);
// Names of this run, so parallel runs against one broker do not meet.
const PREFIX = `interop.amqplib_ext.${process.pid}`;
const TIMEOUT_MS = 5000;
const EXCHANGES = [];
const REPLY_TO = 'amq.rabbitmq.reply-to';
const CONNECT = [
  { hostname: HOST, port: PORT, username: 'guest', password: 'guest' },
  { timeout: TIMEOUT_MS }, // for the TCP connect and the handshake
];

const name = (suffix) => `${PREFIX}.${suffix}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// An exchange of this run; a failed run deletes those it left (see main).
async function newExchange(ch, suffix, kind = 'direct') {
  const ex = name(suffix);
  await ch.assertExchange(ex, kind, { durable: false });
  EXCHANGES.push(ex);
  return ex;
}

// An exclusive queue: the broker removes it when the connection closes.
async function newQueue(ch, suffix, args) {
  const q = name(suffix);
  const ok = await ch.assertQueue(q, { exclusive: true, durable: false, arguments: args });
  assert.equal(ok.queue, q, 'declare-ok queue name');
  return q;
}

// Bodies of every message ready in the queue, acknowledged, in queue order.
async function drain(ch, queue) {
  const bodies = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: false });
    if (m === false) return bodies;
    bodies.push(m.content.toString());
    ch.ack(m);
  }
}

// The next message of the queue, waiting up to TIMEOUT_MS: a dead-lettered message is
// republished a moment after the event that caused it. With noAck false the caller settles.
async function getOne(ch, queue, what, noAck = true) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const m = await ch.get(queue, { noAck });
    if (m !== false) return m;
    if (Date.now() > deadline) throw new Error(`${what}: ${queue} stayed empty`);
    await sleep(50);
  }
}

// Resolves once cond() holds; rejects after TIMEOUT_MS.
async function waitFor(cond, what) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: nothing within ${TIMEOUT_MS} ms`);
    await sleep(20);
  }
}

// A publish on a confirm channel: resolves with the error its confirm callback got (null
// for basic.ack, an Error for basic.nack).
function publishConfirmed(cc, exchange, key, body, options) {
  return new Promise((resolve) => {
    cc.publish(exchange, key, Buffer.from(body), options, (err) => resolve(err));
  });
}

async function confirms(conn, ch) {
  const q = await newQueue(ch, 'confirm');
  const cc = await conn.createConfirmChannel();
  const acks = ['c1', 'c2', 'c3'].map((b) =>
    publishConfirmed(cc, '', q, b, { deliveryMode: 2 }),
  );
  await cc.waitForConfirms();
  assert.deepEqual(await Promise.all(acks), [null, null, null], 'confirm callbacks (acks)');
  assert.deepEqual(await drain(ch, q), ['c1', 'c2', 'c3'], 'acked messages in the queue');

  // A full queue that rejects publishes: the second publisher gets basic.nack.
  const full = await newQueue(ch, 'full', { 'x-max-length': 1, 'x-overflow': 'reject-publish' });
  const fits = publishConfirmed(cc, '', full, 'fits');
  const nacked = publishConfirmed(cc, '', full, 'does not fit');
  await assert.rejects(cc.waitForConfirms(), 'waitForConfirms after a nack');
  assert.equal(await fits, null, 'confirm of the publish that fits');
  const err = await nacked;
  assert.ok(err instanceof Error, `confirm of the rejected publish is an error, got ${err}`);
  assert.equal(err.message, 'message nacked', 'nack error message');

  // The channel stays open and keeps confirming once there is room.
  assert.deepEqual(await drain(ch, full), ['fits'], 'full queue holds only the first message');
  const again = publishConfirmed(cc, '', full, 'room again');
  await cc.waitForConfirms();
  assert.equal(await again, null, 'confirm once there is room');
  assert.deepEqual(await drain(ch, full), ['room again'], 'queue after the ack');
  await cc.close();
}

async function mandatoryReturns(conn, ch) {
  const ex = await newExchange(ch, 'ret');
  const q = await newQueue(ch, 'ret');
  await ch.bindQueue(q, ex, 'bound');

  // Without confirms: the returned message arrives whole through the 'return' event.
  const rc = await conn.createChannel();
  const returned = [];
  rc.on('return', (m) => returned.push(m));
  const props = {
    contentType: 'application/octet-stream',
    deliveryMode: 2,
    messageId: 'm-42',
    correlationId: 'ret-1',
    headers: { n: 7, s: 'x' },
  };
  const body = Buffer.alloc(256 * 600); // several body frames
  for (let i = 0; i < body.length; i++) body[i] = i % 256;
  rc.publish(ex, 'nobody', Buffer.from('not mandatory')); // dropped, never returned
  rc.publish(ex, 'nobody', body, { ...props, mandatory: true });
  rc.sendToQueue(name('no.such.queue'), Buffer.from('to a missing queue'), { mandatory: true });
  rc.publish(ex, 'bound', Buffer.from('routed'), { mandatory: true });
  await waitFor(() => returned.length >= 2, 'two basic.return');
  // A round trip on the channel: a third return would have arrived before its reply.
  await rc.checkExchange(ex);
  assert.equal(returned.length, 2, 'returns (non-mandatory and routed ones are not returned)');

  const [first, second] = returned;
  assert.deepEqual(
    first.fields,
    { replyCode: 312, replyText: 'NO_ROUTE', exchange: ex, routingKey: 'nobody' },
    'first basic.return',
  );
  assert.equal(first.content.length, body.length, 'returned body length');
  assert.ok(first.content.equals(body), 'returned body bytes');
  for (const [k, v] of Object.entries(props)) {
    assert.deepEqual(first.properties[k], v, `returned property ${k}`);
  }
  assert.deepEqual(
    second.fields,
    { replyCode: 312, replyText: 'NO_ROUTE', exchange: '', routingKey: name('no.such.queue') },
    'basic.return from the default exchange',
  );
  assert.equal(second.content.toString(), 'to a missing queue', 'second returned body');
  assert.deepEqual(await drain(ch, q), ['routed'], 'routable mandatory message delivered');
  await rc.close();

  // With confirms: the return comes first, then the ack (the message was handled).
  const cc = await conn.createConfirmChannel();
  const events = [];
  cc.on('return', (m) => events.push(`return ${m.fields.replyCode} ${m.content}`));
  await new Promise((resolve) => {
    cc.publish(ex, 'nobody', Buffer.from('confirmed return'), { mandatory: true }, (err) => {
      events.push(err === null ? 'ack' : `nack ${err.message}`);
      resolve();
    });
  });
  assert.deepEqual(events, ['return 312 confirmed return', 'ack'], 'return, then ack');
  await cc.close();
  await ch.deleteExchange(ex);
}

async function directReplyTo(conn, ch) {
  // Publishing with reply-to amq.rabbitmq.reply-to needs a reply consumer on the channel.
  const bad = await conn.createChannel();
  bad.on('error', () => {}); // the rejection below carries the same close
  const closed = new Promise((resolve) => bad.on('close', resolve));
  bad.sendToQueue(name('anything'), Buffer.from('x'), { replyTo: REPLY_TO });
  await assert.rejects(bad.checkExchange(''), (e) => {
    assert.equal(e.code, 406, 'reply code without a reply consumer');
    assert.match(e.message, /"PRECONDITION_FAILED - fast reply consumer does not exist"/);
    return true;
  });
  await closed;

  // The RPC server runs on a connection of its own, as it would in another process.
  const serverConn = await amqp.connect(...CONNECT);
  serverConn.on('error', (e) => console.log(`server connection error: ${e.message}`));
  try {
    await rpcRoundTrips(conn, serverConn);
  } finally {
    await serverConn.close();
  }
}

async function rpcRoundTrips(conn, serverConn) {
  const server = await serverConn.createChannel();
  const requests = await newQueue(server, 'rpc.requests');
  const served = [];
  await server.consume(
    requests,
    (m) => {
      served.push(m);
      // Replies go to whatever reply-to the request carries, through the default exchange.
      server.sendToQueue(m.properties.replyTo, Buffer.from(`reply to ${m.content}`), {
        correlationId: m.properties.correlationId,
      });
    },
    { noAck: true },
  );

  const client = await conn.createChannel();
  const replies = [];
  const { consumerTag } = await client.consume(REPLY_TO, (m) => replies.push(m), {
    noAck: true,
  });
  for (const i of [1, 2, 3]) {
    client.sendToQueue(requests, Buffer.from(`request ${i}`), {
      replyTo: REPLY_TO,
      correlationId: `corr-${i}`,
    });
  }
  await waitFor(() => replies.length >= 3, 'three replies on amq.rabbitmq.reply-to');

  const replyTo = served[0].properties.replyTo;
  // The broker replaces the pseudo-queue's name by one that leads back to this channel.
  assert.ok(
    replyTo.startsWith(`${REPLY_TO}.`) && replyTo.length > REPLY_TO.length + 1,
    `reply-to seen by the server ${replyTo} does not extend ${REPLY_TO}`,
  );
  assert.deepEqual(
    served.map((m) => [m.content.toString(), m.properties.correlationId, m.properties.replyTo]),
    [1, 2, 3].map((i) => [`request ${i}`, `corr-${i}`, replyTo]),
    'requests as served',
  );
  assert.deepEqual(
    replies.map((m) => [m.content.toString(), m.properties.correlationId]),
    [1, 2, 3].map((i) => [`reply to request ${i}`, `corr-${i}`]),
    'replies received',
  );
  for (const m of replies) {
    assert.deepEqual(
      [m.fields.consumerTag, m.fields.exchange, m.fields.routingKey],
      [consumerTag, '', replyTo],
      'reply deliver consumer tag, exchange, routing key',
    );
  }

  // Once the client's channel is gone its reply-to name routes nowhere: a mandatory reply
  // comes back.
  await client.close();
  const sc = await serverConn.createConfirmChannel();
  const late = [];
  sc.on('return', (m) => late.push(m.fields.replyCode));
  sc.sendToQueue(replyTo, Buffer.from('too late'), { mandatory: true });
  await sc.waitForConfirms();
  assert.deepEqual(late, [312], 'return of a reply to a closed channel');
}

// Before an expensive computation an RPC server may check that the client is still there,
// as RabbitMQ's guide suggests: a passive declare of the reply-to name answers declare-ok
// (no messages, one consumer) while the client's channel is open, 404 after.
async function replyToPassiveDeclare(conn, ch) {
  const client = await conn.createChannel();
  await client.consume(REPLY_TO, () => {}, { noAck: true });
  const q = await newQueue(ch, 'rpc.probe');
  client.sendToQueue(q, Buffer.from('request'), { replyTo: REPLY_TO });
  const { replyTo } = (await getOne(ch, q, 'request with a reply-to')).properties;
  const probe = await conn.createChannel();
  probe.on('error', () => {}); // a 404 rejects checkQueue with the close's text
  assert.deepEqual(
    await probe.checkQueue(replyTo),
    { queue: replyTo, messageCount: 0, consumerCount: 1 },
    'passive declare-ok of a live reply-to name',
  );
  await client.close();
  await assert.rejects(probe.checkQueue(replyTo), (e) => {
    assert.equal(e.code, 404, 'reply code of a closed channel\'s reply-to name');
    const text = `"NOT_FOUND - no queue '${replyTo}' in vhost '/'"`;
    assert.ok(e.message.endsWith(text), `${e.message} ends with ${text}`);
    return true;
  });
}

// Headers of a dead letter: the sent ones, x-death equal to deaths (each entry's time is
// checked to be a timestamp near now, then left out) and x-first-death-* from first =
// [reason, queue, exchange]. RabbitMQ 3.13 added x-last-death-*: allowed, and then they must
// describe the newest death.
function expectDeath(props, what, sentHeaders, deaths, first) {
  const headers = { ...props.headers };
  const xDeath = headers['x-death'];
  delete headers['x-death'];
  assert.ok(Array.isArray(xDeath), `${what}: x-death is not an array`);
  const now = Date.now() / 1000;
  const entries = xDeath.map((entry) => {
    const { time, ...rest } = entry;
    assert.equal(time && time['!'], 'timestamp', `${what}: x-death time is a timestamp`);
    assert.ok(Math.abs(time.value - now) < 120, `${what}: x-death time ${time.value} vs ${now}`);
    return rest;
  });
  assert.deepEqual(entries, deaths, `${what}: x-death`);
  ['reason', 'queue', 'exchange'].forEach((key, i) => {
    assert.equal(headers[`x-first-death-${key}`], first[i], `${what}: x-first-death-${key}`);
    delete headers[`x-first-death-${key}`];
  });
  if ('x-last-death-reason' in headers) {
    for (const key of ['reason', 'queue', 'exchange']) {
      assert.equal(headers[`x-last-death-${key}`], deaths[0][key], `${what}: x-last-death`);
      delete headers[`x-last-death-${key}`];
    }
  }
  assert.deepEqual(headers, sentHeaders, `${what}: other headers`);
}

// A work exchange and queue whose dead letters go through a dead-letter exchange, with the
// routing key 'dead', to a queue of their own.
async function deadLetterSetup(ch, suffix, args) {
  const dlx = await newExchange(ch, `${suffix}.dlx`);
  const dlq = await newQueue(ch, `${suffix}.dlq`);
  await ch.bindQueue(dlq, dlx, 'dead');
  const ex = await newExchange(ch, `${suffix}.work`);
  const q = await newQueue(ch, `${suffix}.work`, {
    'x-dead-letter-exchange': dlx,
    'x-dead-letter-routing-key': 'dead',
    ...args,
  });
  await ch.bindQueue(q, ex, 'work');
  return { ex, q, dlx, dlq };
}

async function deadLetterRejected(conn, ch) {
  const { ex, q, dlx, dlq } = await deadLetterSetup(ch, 'dl.rej', {});
  ch.publish(ex, 'work', Buffer.from('poison'), {
    correlationId: 'dl-1',
    headers: { keep: 'me' },
  });
  const m = await getOne(ch, q, 'message on the work queue', false);
  ch.nack(m, false, false);

  const d = await getOne(ch, dlq, 'nacked message on the dead-letter queue');
  assert.equal(d.content.toString(), 'poison', 'dead-lettered body');
  assert.deepEqual(
    [d.fields.exchange, d.fields.routingKey, d.fields.redelivered],
    [dlx, 'dead', false],
    'dead-letter delivery exchange, routing key, redelivered',
  );
  assert.equal(d.properties.correlationId, 'dl-1', 'dead-lettered correlation id');
  expectDeath(
    d.properties,
    'rejected',
    { keep: 'me' },
    [{ count: 1, reason: 'rejected', queue: q, exchange: ex, 'routing-keys': ['work'] }],
    ['rejected', q, ex],
  );
  await ch.deleteExchange(ex);
  await ch.deleteExchange(dlx);
}

async function deadLetterExpiredAndMaxlen(conn, ch) {
  const t = await deadLetterSetup(ch, 'dl.ttl', {});
  ch.publish(t.ex, 'work', Buffer.from('short lived'), { expiration: '50' });
  const e = await getOne(ch, t.dlq, 'expired message on the dead-letter queue');
  assert.equal(e.content.toString(), 'short lived', 'expired body');
  assert.equal(e.properties.expiration, undefined, 'expiration property of the dead letter');
  expectDeath(
    e.properties,
    'expired',
    {},
    [
      {
        count: 1,
        reason: 'expired',
        queue: t.q,
        exchange: t.ex,
        'routing-keys': ['work'],
        'original-expiration': '50',
      },
    ],
    ['expired', t.q, t.ex],
  );

  const l = await deadLetterSetup(ch, 'dl.len', { 'x-max-length': 1 });
  ch.publish(l.ex, 'work', Buffer.from('oldest'));
  ch.publish(l.ex, 'work', Buffer.from('newest'));
  const d = await getOne(ch, l.dlq, 'message dropped from the head');
  assert.equal(d.content.toString(), 'oldest', 'dead letter of drop-head is the oldest');
  expectDeath(
    d.properties,
    'maxlen',
    {},
    [{ count: 1, reason: 'maxlen', queue: l.q, exchange: l.ex, 'routing-keys': ['work'] }],
    ['maxlen', l.q, l.ex],
  );
  assert.deepEqual(await drain(ch, l.q), ['newest'], 'work queue keeps the newest message');
  for (const x of [t.ex, t.dlx, l.ex, l.dlx]) await ch.deleteExchange(x);
}

const CHECKS = [
  ['confirm channel: acks, and a nack from a reject-publish queue', confirms],
  ["mandatory returns: 'return' event with 312 NO_ROUTE, with and without confirms",
    mandatoryReturns],
  ['direct reply-to RPC across two connections', directReplyTo],
  ['dead-lettered on nack: x-death rejected', deadLetterRejected],
  ['dead-lettered on expiry and by x-max-length: x-death expired, maxlen',
    deadLetterExpiredAndMaxlen],
  ['direct reply-to: a passive declare of the reply-to name finds the client',
    replyToPassiveDeclare],
];

// Best effort, so that a failed run against a shared broker leaves nothing behind.
async function deleteExchanges() {
  try {
    const conn = await amqp.connect(...CONNECT);
    const ch = await conn.createChannel();
    for (const ex of EXCHANGES) await ch.deleteExchange(ex);
    await conn.close();
  } catch {
    // the broker is gone: nothing more to do
  }
}

async function main() {
  // The package exports no ./package.json: read it beside its entry point.
  const pkg = path.join(path.dirname(require.resolve('amqplib')), 'package.json');
  const version = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  console.log(`amqplib ${version} against ${HOST}:${PORT}`);
  const conn = await amqp.connect(...CONNECT);
  conn.on('error', (e) => console.log(`connection error: ${e.message}`));
  const ch = await conn.createChannel();
  for (const [title, fn] of CHECKS) {
    try {
      await fn(conn, ch);
    } catch (e) {
      console.log(`FAIL ${title}: ${e.message}`);
      await deleteExchanges();
      return 1;
    }
    console.log(`ok   ${title}`);
  }
  await conn.close();
  console.log('ok   connection.close');
  return 0;
}

// Exit explicitly: after a failure the connection may still hold the event loop open.
main().then(
  (status) => process.exit(status),
  (e) => {
    console.log(`FAIL ${e.stack || e}`);
    process.exit(1);
  },
);
