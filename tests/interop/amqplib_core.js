// The broker core as amqplib (Node.js, promise API) sees it: the scenarios of pika_core.py,
// plus the field-table types that amqplib writes and pika does not (byte, short, double,
// float, unsigned integers).
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
const PREFIX = `interop.amqplib.${process.pid}`;
const TIMEOUT_MS = 5000;
const EXCHANGES = [];

const name = (suffix) => `${PREFIX}.${suffix}`;

// An exchange of this run; a failed run deletes those it left (see main).
async function newExchange(ch, suffix, kind) {
  const ex = name(suffix);
  await ch.assertExchange(ex, kind, { durable: false });
  EXCHANGES.push(ex);
  return ex;
}

// An exclusive queue: the broker removes it when the connection closes.
async function newQueue(ch, suffix) {
  const q = name(suffix);
  const ok = await ch.assertQueue(q, { exclusive: true, durable: false });
  assert.deepEqual(ok, { queue: q, messageCount: 0, consumerCount: 0 }, 'declare-ok');
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

// Consumes until n messages arrived (each passed to onMessage), then cancels.
async function consumeN(ch, queue, n, onMessage) {
  const got = [];
  let tag;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`consumer got ${got.length} of ${n} messages in ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
    ch.consume(
      queue,
      (m) => {
        got.push(m);
        onMessage(m);
        if (got.length === n) {
          clearTimeout(timer);
          resolve();
        }
      },
      { noAck: false },
    ).then((ok) => {
      tag = ok.consumerTag;
    }, reject);
  });
  await ch.cancel(tag);
  return got;
}

async function publishConsumeAck(conn, ch) {
  const ex = await newExchange(ch, 'direct', 'direct');
  const q = await newQueue(ch, 'work');
  await ch.bindQueue(q, ex, 'work');
  const sent = ['one', 'two', 'three'];
  for (const body of sent) ch.publish(ex, 'work', Buffer.from(body));
  ch.publish(ex, 'not.bound', Buffer.from('dropped'));

  const got = await consumeN(ch, q, sent.length, (m) => ch.ack(m));
  assert.deepEqual(
    got.map((m) => m.content.toString()),
    sent,
    'consumed bodies in order',
  );
  for (const m of got) {
    assert.equal(m.fields.exchange, ex, 'deliver exchange');
    assert.equal(m.fields.routingKey, 'work', 'deliver routing key');
    assert.equal(m.fields.redelivered, false, 'deliver redelivered flag');
  }
  assert.equal((await ch.checkQueue(q)).messageCount, 0, 'queue after acks');

  // A message nacked with requeue comes back, flagged redelivered.
  ch.publish(ex, 'work', Buffer.from('again'));
  await consumeN(ch, q, 1, (m) => ch.nack(m, false, true));
  const m = await ch.get(q, { noAck: true });
  assert.notEqual(m, false, 'nacked message was requeued');
  assert.deepEqual([m.content.toString(), m.fields.redelivered], ['again', true], 'requeued');

  await ch.unbindQueue(q, ex, 'work');
  ch.publish(ex, 'work', Buffer.from('after unbind'));
  assert.deepEqual(await drain(ch, q), [], 'queue after unbind');
  await ch.deleteExchange(ex);
}

async function basicGet(conn, ch) {
  const q = await newQueue(ch, 'get');
  assert.equal(await ch.get(q), false, 'basic.get on an empty queue');
  ch.sendToQueue(q, Buffer.from('first'));
  ch.sendToQueue(q, Buffer.from('second'));
  const m = await ch.get(q, { noAck: false });
  assert.notEqual(m, false, 'basic.get-empty with two messages in the queue');
  assert.equal(m.content.toString(), 'first', 'first basic.get body');
  assert.equal(m.fields.messageCount, 1, 'get-ok message_count (messages left)');
  assert.equal(m.fields.routingKey, q, 'get-ok routing key');
  ch.ack(m);
  assert.deepEqual(await drain(ch, q), ['second'], 'rest of the queue');
}

async function topicRouting(conn, ch) {
  const ex = await newExchange(ch, 'topic', 'topic');
  const star = await newQueue(ch, 'star');
  const hash = await newQueue(ch, 'hash');
  await ch.bindQueue(star, ex, 'stock.*.nyse');
  await ch.bindQueue(hash, ex, 'stock.#');
  const keys = [
    'stock.ibm.nyse',
    'stock.ibm.nasdaq',
    'stock.nyse',
    'stock',
    'stock.a.b.nyse',
    'other.ibm.nyse',
  ];
  for (const key of keys) ch.publish(ex, key, Buffer.from(key));
  assert.deepEqual(await drain(ch, star), ['stock.ibm.nyse'], 'queue bound with stock.*.nyse');
  assert.deepEqual(
    await drain(ch, hash),
    ['stock.ibm.nyse', 'stock.ibm.nasdaq', 'stock.nyse', 'stock', 'stock.a.b.nyse'],
    'queue bound with stock.#',
  );
  await ch.deleteExchange(ex);
}

async function fanout(conn, ch) {
  const ex = await newExchange(ch, 'fanout', 'fanout');
  const a = await newQueue(ch, 'fan.a');
  const b = await newQueue(ch, 'fan.b');
  await ch.bindQueue(a, ex, 'ignored');
  await ch.bindQueue(b, ex, '');
  ch.publish(ex, 'any.key', Buffer.from('to all'));
  assert.deepEqual(await drain(ch, a), ['to all'], 'first fanout queue');
  assert.deepEqual(await drain(ch, b), ['to all'], 'second fanout queue');
  await ch.deleteExchange(ex);
}

async function channelErrorAndRecovery(conn, ch) {
  const missing = name('missing');
  const bad = await conn.createChannel();
  const closed = new Promise((resolve) => bad.on('close', resolve));
  let channelError = null;
  bad.on('error', (e) => {
    channelError = e;
  });
  await assert.rejects(bad.checkQueue(missing), (e) => {
    assert.equal(e.code, 404, 'channel.close reply code');
    assert.deepEqual([e.classId, e.methodId], [50, 10], 'channel.close class and method');
    assert.equal(
      e.message,
      `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message ` +
        `"NOT_FOUND - no queue '${missing}' in vhost '/'"`,
      'channel.close reply text',
    );
    return true;
  });
  await closed;
  assert.notEqual(channelError, null, 'the channel reported its error');

  // The connection and its other channels carry on; a new channel works.
  const fresh = await conn.createChannel();
  const q = await newQueue(fresh, 'recovered');
  fresh.sendToQueue(q, Buffer.from('still here'));
  assert.deepEqual(await drain(fresh, q), ['still here'], 'publish and get on a new channel');
  assert.deepEqual(await drain(ch, q), [], 'first channel after another channel error');
  await fresh.close();
}

async function propertiesAndHeaders(conn, ch) {
  const q = await newQueue(ch, 'props');
  const headers = {
    string: 'text é',
    bytes: Buffer.from([0, 1, 255]),
    byte: -5,
    short: 1000,
    int: 100000,
    long: 2 ** 40,
    double: 3.5,
    float: { '!': 'float', value: 1.5 },
    ubyte: { '!': 'uint8', value: 200 },
    ushort: { '!': 'uint16', value: 60000 },
    uint: { '!': 'uint32', value: 4000000000 },
    true: true,
    false: false,
    decimal: { '!': 'decimal', value: { places: 2, digits: 314 } },
    timestamp: { '!': 'timestamp', value: 1700000000 },
    table: { nested: 'yes', n: 1 },
    array: [1, 'two', true, { x: 'y' }],
    void: null,
  };
  // What amqplib decodes: plain numbers for every integer and float type.
  const decoded = {
    ...headers,
    float: 1.5,
    ubyte: 200,
    ushort: 60000,
    uint: 4000000000,
  };
  const props = {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    headers,
    deliveryMode: 2,
    priority: 5,
    correlationId: 'corr-1',
    replyTo: 'reply.queue',
    expiration: '60000',
    messageId: 'msg-1',
    timestamp: 1700000000,
    type: 'test.type',
    userId: 'guest',
    appId: 'interop',
  };
  // Bigger than frame_max, so the body travels in several frames.
  const body = Buffer.alloc(256 * 1200);
  for (let i = 0; i < body.length; i++) body[i] = i % 256;
  ch.sendToQueue(q, body, props);
  ch.sendToQueue(q, Buffer.alloc(0));

  const m = await ch.get(q, { noAck: true });
  assert.notEqual(m, false, 'message with properties was delivered');
  assert.equal(m.content.length, body.length, 'body length');
  assert.ok(m.content.equals(body), 'body bytes');
  const { headers: gotHeaders, ...gotProps } = m.properties;
  const { headers: _, ...sentProps } = props;
  assert.deepEqual(gotProps, { ...sentProps, clusterId: undefined }, 'properties');
  assert.deepEqual(gotHeaders, decoded, 'headers');

  const empty = await ch.get(q, { noAck: true });
  assert.notEqual(empty, false, 'empty message was delivered');
  assert.equal(empty.content.length, 0, 'empty body');
  // amqplib always sends a headers table, empty here: it must come back present and empty.
  assert.deepEqual(
    [empty.properties.headers, empty.properties.contentType, empty.properties.deliveryMode],
    [{}, undefined, undefined],
    'properties of a message sent without any',
  );
}

const CHECKS = [
  ['declare, bind, publish, consume with manual ack', publishConsumeAck],
  ['basic.get', basicGet],
  ['topic routing with * and #', topicRouting],
  ['fanout to two queues', fanout],
  ['channel error 404 and a new channel on the same connection', channelErrorAndRecovery],
  ['properties and headers round trip', propertiesAndHeaders],
];

// Best effort, so that a failed run against a shared broker leaves nothing behind.
async function deleteExchanges(conn) {
  try {
    const ch = await conn.createChannel();
    for (const ex of EXCHANGES) await ch.deleteExchange(ex);
  } catch {
    // the connection is gone: nothing more to do
  }
}

async function main() {
  // The package exports no ./package.json: read it beside its entry point.
  const pkg = path.join(path.dirname(require.resolve('amqplib')), 'package.json');
  const version = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  console.log(`amqplib ${version} against ${HOST}:${PORT}`);
  const conn = await amqp.connect(
    { hostname: HOST, port: PORT, username: 'guest', password: 'guest' },
    { timeout: TIMEOUT_MS }, // for the TCP connect and the handshake
  );
  conn.on('error', (e) => console.log(`connection error: ${e.message}`));
  const ch = await conn.createChannel();
  for (const [title, fn] of CHECKS) {
    try {
      await fn(conn, ch);
    } catch (e) {
      console.log(`FAIL ${title}: ${e.message}`);
      await deleteExchanges(conn);
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
