// Stream queues (x-queue-type=stream) as amqplib (Node.js, promise API) sees them: a declare,
// publishing on a confirm channel, consumers from first, a numeric offset (as amqplib encodes
// a small number: a byte; and as an explicit long), next and a timestamp, the x-stream-offset
// header of each delivery, acks as credit (never more than the prefetch unacknowledged), two
// consumers at different offsets on one channel following the tail, and RabbitMQ's refusals
// with their codes and texts (the texts of stream_pika.py, checked against RabbitMQ 3.10.8).
//
// Environment: AMQP_HOST and AMQP_PORT. Prints one line per check; exits 1 at the first
// failure. Passes against RabbitMQ 3.10.8 too.
'use strict';

const assert = require('node:assert/strict');
const amqp = require('amqplib');

const HOST = process.env.AMQP_HOST || '127.0.0.1';
const PORT = Number(process.env.AMQP_PORT || 5672);
const CONNECT = [{ hostname: HOST, port: PORT, username: 'guest', password: 'guest' }, { timeout: 5000 }];
const STREAM = `interop.stream.amqplib.${process.pid}`;
const WAIT_MS = 5000;
// How long "nothing more arrives" is watched for.
const QUIET_MS = 400;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const bodies = (from, to) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

// A consumer that keeps what it receives; it acks only when told (acks are its credit).
class Reader {
  constructor(ch, opts) {
    this.ch = ch;
    this.opts = opts;
    this.got = [];
    this.unacked = [];
    this.maxUnacked = 0;
    this.waiters = [];
  }

  async start(queue) {
    const ok = await this.ch.consume(queue, (m) => this.onMessage(m), this.opts);
    this.tag = ok.consumerTag;
    return this;
  }

  onMessage(m) {
    this.got.push(m);
    this.unacked.push(m);
    this.maxUnacked = Math.max(this.maxUnacked, this.unacked.length);
    if (this.autoAck) this.ackAll();
    this.waiters = this.waiters.filter((w) => !w());
  }

  ackAll() {
    for (const m of this.unacked) this.ch.ack(m);
    this.unacked = [];
  }

  // Resolves once n messages arrived in all; fails after WAIT_MS.
  waitFor(n, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${what}: ${this.got.length} of ${n} deliveries within ${WAIT_MS} ms`)),
        WAIT_MS,
      );
      const check = () => {
        if (this.got.length < n) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  offsets() {
    return this.got.map((m) => m.properties.headers['x-stream-offset']);
  }

  contents() {
    return this.got.map((m) => m.content.toString());
  }
}

async function reader(conn, prefetch, offset, autoAck = true) {
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch);
  const args = offset === undefined ? {} : { 'x-stream-offset': offset };
  const r = new Reader(ch, { noAck: false, arguments: args });
  r.autoAck = autoAck;
  return r.start(STREAM);
}

async function publish(conn, from, to) {
  const ch = await conn.createConfirmChannel();
  const acked = [];
  for (const b of bodies(from, to)) {
    ch.sendToQueue(STREAM, Buffer.from(b), { headers: { k: 'v' }, persistent: false }, (err) => {
      assert.equal(err, null, `confirm of ${b} is an ack`);
      acked.push(b);
    });
  }
  await ch.waitForConfirms();
  assert.deepEqual(acked, bodies(from, to), 'every publish confirmed, in order');
  await ch.close();
}

async function declare(conn) {
  const ch = await conn.createChannel();
  const ok = await ch.assertQueue(STREAM, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  assert.deepEqual(ok, { queue: STREAM, messageCount: 0, consumerCount: 0 }, 'declare-ok');
  // A redeclare with the same arguments is accepted.
  await ch.assertQueue(STREAM, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  await ch.close();
}

let tBefore;

async function publishConfirmed(conn) {
  tBefore = Math.floor(Date.now() / 1000);
  await publish(conn, 0, 20);
}

async function fromFirst(conn) {
  const r = await reader(conn, 10, 'first');
  await r.waitFor(20, 'from first');
  assert.deepEqual(r.contents(), bodies(0, 20), 'bodies from first');
  assert.deepEqual(r.offsets(), range(0, 20), 'x-stream-offset from first');
  for (const m of r.got) {
    const off = m.properties.headers['x-stream-offset'];
    assert.equal(typeof off, 'number', 'x-stream-offset is a number to amqplib');
    assert.ok(Number.isInteger(off), 'x-stream-offset is an integer');
    assert.equal(m.properties.headers.k, 'v', "the publisher's header is kept");
    assert.equal(m.fields.redelivered, false, 'redelivered');
    assert.equal(m.fields.exchange, '', 'deliver exchange');
    assert.equal(m.fields.routingKey, STREAM, 'deliver routing key');
  }
  assert.deepEqual(r.got.map((m) => m.fields.deliveryTag), range(1, 21), 'delivery tags');
  await r.ch.close();
  // The acks removed nothing: another consumer reads the same messages.
  const again = await reader(conn, 10, 'first');
  await again.waitFor(20, 'from first, again');
  assert.deepEqual(again.offsets(), range(0, 20), 'offsets from first after acks');
  await again.ch.close();
}

async function fromOffsets(conn) {
  // amqplib sends a plain 5 as a signed byte ('b').
  const small = await reader(conn, 10, 5);
  await small.waitFor(15, 'from offset 5');
  assert.deepEqual(small.offsets(), range(5, 20), 'offsets from 5 (a byte)');
  assert.deepEqual(small.contents(), bodies(5, 20), 'bodies from 5');
  await small.ch.close();
  const long = await reader(conn, 10, { '!': 'long', value: 12 });
  await long.waitFor(8, 'from offset 12');
  assert.deepEqual(long.offsets(), range(12, 20), 'offsets from 12 (a long)');
  await long.ch.close();
  // An AMQP timestamp (seconds) before the first publish: everything.
  const ts = await reader(conn, 10, { '!': 'timestamp', value: tBefore - 1 });
  await ts.waitFor(20, 'from a timestamp');
  assert.deepEqual(ts.offsets(), range(0, 20), 'offsets from a timestamp before the publishes');
  await ts.ch.close();
}

// RabbitMQ delivers a stream by chunks (the messages written together): a consumer with
// credit left gets a whole chunk, however big, so prefetch bounds only streams whose chunks
// hold one message each. The credit check therefore reads a stream published one confirmed
// message at a time; against warrend (WARREN=1) the first 20, published in a burst, must
// keep the bound too, since Warren delivers message by message.
async function creditOn(conn, queue, what) {
  // Prefetch 3 and no acks: three deliveries, then nothing until an ack gives credit back.
  const ch = await conn.createChannel();
  await ch.prefetch(3);
  const r = await new Reader(ch, { noAck: false, arguments: { 'x-stream-offset': 'first' } }).start(queue);
  await r.waitFor(3, `${what}: prefetch 3`);
  await sleep(QUIET_MS);
  assert.deepEqual(r.offsets(), [0, 1, 2], `${what}: only the prefetch is delivered without acks`);
  r.ch.ack(r.unacked.shift());
  await r.waitFor(4, `${what}: after one ack`);
  await sleep(QUIET_MS);
  assert.deepEqual(r.offsets(), [0, 1, 2, 3], `${what}: one ack, one more delivery`);
  // Acking all at once (multiple) gives the whole credit back.
  r.ch.ack(r.unacked[r.unacked.length - 1], true);
  r.unacked = [];
  await r.waitFor(7, `${what}: after a multiple ack`);
  await sleep(QUIET_MS);
  assert.deepEqual(r.offsets(), range(0, 7), `${what}: a multiple ack of 3 gives 3 more`);
  assert.equal(r.maxUnacked, 3, `${what}: never more than the prefetch unacknowledged`);
  await r.ch.close();
}

async function credit(conn) {
  const q = `${STREAM}.credit`;
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  for (const b of bodies(0, 10)) {
    ch.sendToQueue(q, Buffer.from(b));
    await ch.waitForConfirms();
  }
  try {
    await creditOn(conn, q, 'one message per publish');
    if (process.env.WARREN === '1') await creditOn(conn, STREAM, 'a burst of 20');
  } finally {
    await ch.deleteQueue(q);
    await ch.close();
  }
}

async function tail(conn) {
  // Two consumers on one channel (a per-consumer prefetch each) at offsets 0 and 15, and one
  // at next on another; then 5 new messages. The first two get the old messages and the new
  // ones, the one at next only the new ones.
  const ch = await conn.createChannel();
  await ch.prefetch(4);
  const a = new Reader(ch, { noAck: false, arguments: { 'x-stream-offset': 0 } });
  const b = new Reader(ch, { noAck: false, arguments: { 'x-stream-offset': 15 } });
  a.autoAck = b.autoAck = true;
  await a.start(STREAM);
  await b.start(STREAM);
  const next = await reader(conn, 4, 'next');
  await a.waitFor(20, 'consumer at 0');
  await b.waitFor(5, 'consumer at 15');
  await sleep(QUIET_MS);
  assert.deepEqual(next.offsets(), [], 'a consumer at next gets no old message');
  await publish(conn, 20, 25);
  await a.waitFor(25, 'consumer at 0, new messages');
  await b.waitFor(10, 'consumer at 15, new messages');
  await next.waitFor(5, 'consumer at next, new messages');
  await sleep(QUIET_MS);
  assert.deepEqual(a.offsets(), range(0, 25), 'consumer at 0');
  assert.deepEqual(b.offsets(), range(15, 25), 'consumer at 15');
  assert.deepEqual(next.offsets(), range(20, 25), 'consumer at next');
  assert.deepEqual(next.contents(), bodies(20, 25), 'bodies at next');
  await ch.close();
  await next.ch.close();
}

// The broker must refuse fn's operation with this code and text, closing the channel (406)
// or, for a hard error such as 540, the whole connection, as RabbitMQ does. Each refusal gets
// a connection of its own.
async function refused(what, level, code, text, fn) {
  const conn = await amqp.connect(...CONNECT);
  const connClosed = new Promise((resolve) => conn.on('close', resolve));
  conn.on('error', () => {}); // seen through connClosed
  const ch = await conn.createChannel();
  ch.on('error', () => {}); // the rejection carries the same close
  const chClosed = new Promise((resolve) => ch.on('close', resolve));
  let err;
  await assert.rejects(fn(ch), (e) => {
    err = e;
    return true;
  });
  if (level === 'channel') {
    await chClosed;
    assert.equal(err.code, code, `${what}: reply code (${err.message})`);
    assert.ok(err.message.endsWith(`with message "${text}"`), `${what}: got ${err.message}`);
    await conn.close();
  } else {
    const e = await connClosed;
    assert.ok(e instanceof Error, `${what}: the connection was closed by the broker`);
    assert.equal(e.code, code, `${what}: connection.close reply code (${e.message})`);
    assert.ok(e.message.endsWith(`with message "${text}"`), `${what}: got ${e.message}`);
  }
}

async function refusals() {
  const q = `queue '${STREAM}' in vhost '/'`;
  await refused('consume without prefetch', 'channel', 406,
    `PRECONDITION_FAILED - consumer prefetch count is not set for '${q}'`,
    (ch) => ch.consume(STREAM, () => {}, { noAck: false }));
  // amqplib's prefetch(n, true) is a channel-wide (global) limit: still no consumer prefetch.
  await refused('consume with only a global prefetch', 'channel', 406,
    `PRECONDITION_FAILED - consumer prefetch count is not set for '${q}'`,
    async (ch) => {
      await ch.prefetch(10, true);
      return ch.consume(STREAM, () => {}, { noAck: false });
    });
  await refused('consume with noAck', 'connection', 540,
    `NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues ${q}`,
    async (ch) => {
      await ch.prefetch(10);
      return ch.consume(STREAM, () => {}, { noAck: true });
    });
  await refused('basic.get', 'connection', 540,
    `NOT_IMPLEMENTED - basic.get not supported by stream queues ${q}`,
    (ch) => ch.get(STREAM, { noAck: false }));
  await refused('basic.nack', 'connection', 540,
    `NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues ${q}`,
    async (ch) => {
      await ch.prefetch(1);
      const first = new Promise((resolve) => {
        ch.consume(STREAM, resolve, { noAck: false, arguments: { 'x-stream-offset': 'first' } });
      });
      ch.nack(await first, false, true);
      // The close comes back as the answer to the next synchronous method.
      return ch.checkQueue(STREAM);
    });
}

const CHECKS = [
  ['declare a stream', declare],
  ['publish 20 on a confirm channel, all acked', publishConfirmed],
  ['consume from first: offsets 0..19 as integers, headers, tags; acks keep messages', fromFirst],
  ['consume from offset 5 (byte), 12 (long), a timestamp', fromOffsets],
  ['acks are credit: never more than the prefetch unacknowledged', credit],
  ['two consumers on one channel at 0 and 15, one at next, then new messages', tail],
  ['refusals: no prefetch, global prefetch only, noAck, get, nack', refusals],
];

async function main() {
  console.log(`amqplib against ${HOST}:${PORT}`);
  const conn = await amqp.connect(...CONNECT);
  conn.on('error', (e) => console.log(`connection error: ${e.message}`));
  let status = 0;
  for (const [title, fn] of CHECKS) {
    try {
      await fn(conn);
    } catch (e) {
      console.log(`FAIL ${title}: ${e.message}`);
      status = 1;
      break;
    }
    console.log(`ok   ${title}`);
  }
  const ch = await conn.createChannel();
  await ch.deleteQueue(STREAM);
  await conn.close();
  if (status === 0) console.log('PASS');
  return status;
}

// Exit explicitly: after a failure the connection may still hold the event loop open.
main().then(
  (status) => process.exit(status),
  (e) => {
    console.log(`FAIL ${e.stack || e}`);
    process.exit(1);
  },
);
