/*
 * Stream queues (x-queue-type=stream) as the RabbitMQ Java client (Debian's
 * librabbitmq-client-java) sees them, for tests/interop/stream_java.sh: a declare, publishing
 * with confirms, consumers from first, from a numeric offset (sent as a long and as an int)
 * and from a timestamp (a java.util.Date), the x-stream-offset header of every delivery as
 * the client decodes it (a Long: the field type 'l', as RabbitMQ sends it), the publisher's
 * headers as they were, a consumer at next that gets only what is published after it
 * started, and RabbitMQ's refusals (basic.get, a consume without a prefetch).
 *
 *   java -cp CLASSES:JARS StreamJava HOST PORT
 *
 * Prints one line per check; exits 1 at the first failure. Passes against RabbitMQ 3.10.8.
 */

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.ShutdownSignalException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

final class StreamJava {
    private static final long WAIT_MS = 5000;
    private static final long QUIET_MS = 400;

    private static final class CheckFailed extends Exception {
        CheckFailed(String what) {
            super(what);
        }
    }

    private static void expect(boolean ok, String what) throws CheckFailed {
        if (!ok)
            throw new CheckFailed(what);
    }

    private static void expectEq(Object got, Object want, String what) throws CheckFailed {
        if (got == null ? want != null : !got.equals(want))
            throw new CheckFailed(what + ": got " + got + ", expected " + want);
    }

    private static final class Delivery {
        final Envelope envelope;
        final AMQP.BasicProperties props;
        final String body;

        Delivery(Envelope e, AMQP.BasicProperties p, byte[] b) {
            envelope = e;
            props = p;
            body = new String(b, StandardCharsets.UTF_8);
        }

        Object offset() {
            return props.getHeaders() == null ? null : props.getHeaders().get("x-stream-offset");
        }
    }

    /* A consumer with a channel of its own and a prefetch, acking each delivery. */
    private static final class Reader extends DefaultConsumer {
        final LinkedBlockingQueue<Delivery> got = new LinkedBlockingQueue<>();

        Reader(Channel ch) {
            super(ch);
        }

        @Override
        public void handleDelivery(String tag, Envelope e, AMQP.BasicProperties p, byte[] b)
            throws IOException {
            /* The ack first: once the delivery is queued the test may close the channel. */
            getChannel().basicAck(e.getDeliveryTag(), false);
            got.add(new Delivery(e, p, b));
        }

        /* The next n deliveries; fails if they do not come within WAIT_MS. */
        List<Delivery> take(int n, String what) throws CheckFailed, InterruptedException {
            List<Delivery> out = new ArrayList<>();
            long deadline = System.currentTimeMillis() + WAIT_MS;
            while (out.size() < n) {
                Delivery d = got.poll(Math.max(1, deadline - System.currentTimeMillis()),
                                      TimeUnit.MILLISECONDS);
                if (d == null)
                    throw new CheckFailed(what + ": " + out.size() + " of " + n
                                          + " deliveries within " + WAIT_MS + " ms");
                out.add(d);
            }
            return out;
        }

        /* Nothing more arrives for QUIET_MS. */
        void quiet(String what) throws CheckFailed, InterruptedException {
            Delivery d = got.poll(QUIET_MS, TimeUnit.MILLISECONDS);
            if (d != null)
                throw new CheckFailed(what + ": unexpected delivery of offset " + d.offset());
        }
    }

    private final Connection conn;
    private final String stream;

    private StreamJava(Connection conn, String stream) {
        this.conn = conn;
        this.stream = stream;
    }

    private Reader reader(Object offset) throws IOException {
        Channel ch = conn.createChannel();
        ch.basicQos(10);
        Map<String, Object> args = new HashMap<>();
        if (offset != null)
            args.put("x-stream-offset", offset);
        Reader r = new Reader(ch);
        ch.basicConsume(stream, false, args, r);
        return r;
    }

    private static List<Long> range(long from, long to) {
        List<Long> out = new ArrayList<>();
        for (long i = from; i < to; i++)
            out.add(i);
        return out;
    }

    /* The x-stream-offset headers, each required to be a Long. */
    private static List<Long> offsets(List<Delivery> ds, String what) throws CheckFailed {
        List<Long> out = new ArrayList<>();
        for (Delivery d : ds) {
            Object o = d.offset();
            expect(o instanceof Long, what + ": x-stream-offset is a Long, got "
                                          + (o == null ? "none" : o.getClass().getName()));
            out.add((Long)o);
        }
        return out;
    }

    private void publish(int from, int to) throws Exception {
        Channel ch = conn.createChannel();
        ch.confirmSelect();
        Map<String, Object> headers = new HashMap<>();
        headers.put("k", "v");
        headers.put("n", 42);
        for (int i = from; i < to; i++) {
            AMQP.BasicProperties p = new AMQP.BasicProperties.Builder()
                                         .headers(headers).deliveryMode(2).build();
            ch.basicPublish("", stream, true, p, ("m" + i).getBytes(StandardCharsets.UTF_8));
        }
        /* Throws if a publish is nacked or not confirmed in time. */
        ch.waitForConfirmsOrDie(WAIT_MS);
        ch.close();
    }

    void declare() throws Exception {
        Channel ch = conn.createChannel();
        Map<String, Object> args = new HashMap<>();
        args.put("x-queue-type", "stream");
        AMQP.Queue.DeclareOk ok = ch.queueDeclare(stream, true, false, false, args);
        expectEq(ok.getQueue(), stream, "declare-ok queue");
        expectEq(ok.getMessageCount(), 0, "declare-ok message count");
        ch.close();
    }

    void fromFirst() throws Exception {
        Reader r = reader("first");
        List<Delivery> ds = r.take(20, "from first");
        expectEq(offsets(ds, "from first"), range(0, 20), "offsets from first");
        for (int i = 0; i < 20; i++) {
            Delivery d = ds.get(i);
            expectEq(d.body, "m" + i, "body " + i);
            Object k = d.props.getHeaders().get("k");
            expect(k instanceof LongString, "header k is a long string");
            expectEq(k.toString(), "v", "header k");
            expectEq(d.props.getHeaders().get("n"), 42, "header n (an int)");
            expectEq(d.props.getDeliveryMode(), 2, "delivery mode");
            expectEq(d.envelope.isRedeliver(), false, "redelivered");
            expectEq(d.envelope.getDeliveryTag(), (long)(i + 1), "delivery tag");
            expectEq(d.envelope.getRoutingKey(), stream, "routing key");
        }
        r.getChannel().close();
    }

    void fromOffsets() throws Exception {
        Reader r = reader(7L);
        expectEq(offsets(r.take(13, "from 7L"), "from 7L"), range(7, 20), "offsets from 7 (a long)");
        r.getChannel().close();
        r = reader(15);
        expectEq(offsets(r.take(5, "from 15"), "from 15"), range(15, 20), "offsets from 15 (an int)");
        r.getChannel().close();
    }

    void fromTimestamp(long beforeMs) throws Exception {
        /* AMQP timestamps are seconds: one before the first publish takes in everything. */
        Reader r = reader(new Date(beforeMs - 1000));
        expectEq(offsets(r.take(20, "from a timestamp"), "from a timestamp"), range(0, 20),
                 "offsets from a timestamp before the publishes");
        r.getChannel().close();
    }

    void tail() throws Exception {
        Reader next = reader("next");
        Reader first = reader("first");
        first.take(20, "from first, before new messages");
        next.quiet("a consumer at next before new messages");
        publish(20, 25);
        List<Delivery> ds = next.take(5, "at next");
        expectEq(offsets(ds, "at next"), range(20, 25), "offsets at next");
        expectEq(ds.get(0).body, "m20", "first body at next");
        expectEq(offsets(first.take(5, "from first, new messages"), "from first"), range(20, 25),
                 "a consumer from first follows the tail");
        next.quiet("a consumer at next after new messages");
        next.getChannel().close();
        first.getChannel().close();
    }

    private interface Op {
        void run(Channel ch) throws IOException;
    }

    /* op must fail with this reply code and text, closing the channel or the connection. */
    private void refused(String what, boolean connectionLevel, int code, String text, Op op)
        throws Exception {
        ConnectionFactory f = factory(conn.getAddress().getHostAddress(), conn.getPort());
        Connection c = f.newConnection();
        Channel ch = c.createChannel();
        try {
            op.run(ch);
            throw new CheckFailed(what + ": not refused");
        } catch (IOException e) {
            expect(e.getCause() instanceof ShutdownSignalException, what + ": " + e);
            ShutdownSignalException s = (ShutdownSignalException)e.getCause();
            expectEq(s.isHardError(), connectionLevel, what + ": the connection was closed");
            int gotCode = connectionLevel ? ((AMQP.Connection.Close)s.getReason()).getReplyCode()
                                          : ((AMQP.Channel.Close)s.getReason()).getReplyCode();
            String gotText = connectionLevel ? ((AMQP.Connection.Close)s.getReason()).getReplyText()
                                             : ((AMQP.Channel.Close)s.getReason()).getReplyText();
            expectEq(gotCode, code, what + ": reply code");
            expectEq(gotText, text, what + ": reply text");
        } finally {
            if (c.isOpen())
                c.close();
        }
    }

    void refusals() throws Exception {
        String q = "queue '" + stream + "' in vhost '/'";
        refused("basic.get", true, 540,
                "NOT_IMPLEMENTED - basic.get not supported by stream queues " + q,
                ch -> ch.basicGet(stream, false));
        refused("consume without a prefetch", false, 406,
                "PRECONDITION_FAILED - consumer prefetch count is not set for '" + q + "'",
                ch -> ch.basicConsume(stream, false, new DefaultConsumer(ch)));
        refused("consume with auto-ack", true, 540,
                "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues " + q,
                ch -> {
                    ch.basicQos(10);
                    ch.basicConsume(stream, true, new DefaultConsumer(ch));
                });
    }

    private static ConnectionFactory factory(String host, int port) {
        ConnectionFactory f = new ConnectionFactory();
        f.setHost(host);
        f.setPort(port);
        f.setAutomaticRecoveryEnabled(false);
        f.setConnectionTimeout((int)WAIT_MS);
        return f;
    }

    public static void main(String[] argv) throws Exception {
        String host = argv[0];
        int port = Integer.parseInt(argv[1]);
        Connection conn = factory(host, port).newConnection();
        String stream = "interop.stream.java." + ProcessHandle.current().pid();
        StreamJava t = new StreamJava(conn, stream);
        int status = 0;
        String step = "";
        try {
            step = "declare a stream";
            t.declare();
            System.out.println("ok   " + step);
            step = "publish 20 with confirms";
            long before = System.currentTimeMillis();
            t.publish(0, 20);
            System.out.println("ok   " + step);
            step = "consume from first: x-stream-offset Longs 0..19, bodies, headers, tags";
            t.fromFirst();
            System.out.println("ok   " + step);
            step = "consume from offset 7 (a long) and 15 (an int)";
            t.fromOffsets();
            System.out.println("ok   " + step);
            step = "consume from a timestamp (java.util.Date)";
            t.fromTimestamp(before);
            System.out.println("ok   " + step);
            step = "a consumer at next gets only new messages; one from first follows the tail";
            t.tail();
            System.out.println("ok   " + step);
            step = "refusals: basic.get, no prefetch, auto-ack";
            t.refusals();
            System.out.println("ok   " + step);
        } catch (CheckFailed e) {
            System.out.println("FAIL " + step + ": " + e.getMessage());
            status = 1;
        } catch (Exception e) {
            System.out.println("FAIL " + step + ": " + e);
            e.printStackTrace(System.out);
            System.exit(1); /* the client's threads would keep the JVM running */
        }
        Channel ch = conn.createChannel();
        ch.queueDelete(stream);
        conn.close();
        if (status == 0)
            System.out.println("PASS");
        System.exit(status);
    }
}
