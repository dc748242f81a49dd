/*
 * A RabbitMQ Java client (Debian's librabbitmq-client-java) through a cluster failover, for
 * tests/cluster/clients_failover.py: one connection with automatic and topology recovery, a
 * publisher channel in confirm mode and a consumer channel with manual acks, both on one
 * durable queue. Nothing here works around the cluster: what the test checks is that the
 * client's own recovery carries it through a kill -9 of the leader.
 *
 *   java JavaFailover QUEUE OUTDIR FIRST ADDRESSES
 *
 * FIRST (host:port) is the only address of the first connection, a follower's, so the client
 * starts out relayed; ADDRESSES (host:port,...) are all three nodes, the list every recovery
 * tries (the client shuffles it), since the follower may have become the leader or may be
 * the node that was killed. Files written in OUTDIR, one line each:
 *   java.confirmed  ID MS        the publish of ID was confirmed (MS: wall clock, ms)
 *   java.unknown    ID MS        ID was published, its confirm never came (connection lost)
 *   java.nacked     ID MS        ID was nacked
 *   java.received   ID R MS      ID was delivered (R: 1 when redelivered) and acked
 *   java.events     MS WHAT ROLE connected, lost, recovery-started, recovered, stopping
 *                                (ROLE: "connection", the only one)
 * Stops when its standard input closes: no more publishing, consumes until the queue has
 * been idle for 2 s, closes, exits 0.
 */

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Address;
import com.rabbitmq.client.AddressResolver;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.MessageProperties;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoverableConnection;
import com.rabbitmq.client.RecoveryListener;

import java.io.FileWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

public final class JavaFailover {
    private static final int BATCH = 10;
    private static final long BATCH_PAUSE_MS = 50; /* about 200 messages a second */
    private static final long CONFIRM_TIMEOUT_MS = 10000;
    private static final long IDLE_TO_STOP_MS = 2000;
    private static final long STOP_DEADLINE_MS = 20000;

    private static volatile boolean stopping = false;
    private static final AtomicLong lastDeliveryMs = new AtomicLong(System.currentTimeMillis());

    /* One log file; lines are flushed at once so a crash loses nothing written. */
    private static final class Log {
        private final PrintWriter out;

        Log(String dir, String name) throws IOException {
            out = new PrintWriter(new FileWriter(dir + "/" + name, false), true);
        }

        synchronized void line(String s) {
            out.println(s);
        }

        synchronized void close() {
            out.close();
        }
    }

    private static Address parse(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new Address(hostPort.substring(0, colon),
                           Integer.parseInt(hostPort.substring(colon + 1)));
    }

    /* The first connection goes to the follower only; every later resolution (recoveries)
     * offers all the nodes. */
    private static final class FollowerFirst implements AddressResolver {
        private final Address first;
        private final List<Address> all;
        private boolean used = false;

        FollowerFirst(Address first, List<Address> all) {
            this.first = first;
            this.all = all;
        }

        @Override
        public synchronized List<Address> getAddresses() {
            if (!used) {
                used = true;
                List<Address> one = new ArrayList<>();
                one.add(first);
                return one;
            }
            return new ArrayList<>(all);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: JavaFailover QUEUE OUTDIR FIRST HOST:PORT,HOST:PORT,...");
            System.exit(2);
        }
        final String queue = args[0];
        final String dir = args[1];
        List<Address> all = new ArrayList<>();
        for (String a : args[3].split(","))
            all.add(parse(a));

        final Log confirmed = new Log(dir, "java.confirmed");
        final Log unknown = new Log(dir, "java.unknown");
        final Log nacked = new Log(dir, "java.nacked");
        final Log received = new Log(dir, "java.received");
        final Log events = new Log(dir, "java.events");

        ConnectionFactory factory = new ConnectionFactory();
        factory.setAutomaticRecoveryEnabled(true);
        factory.setTopologyRecoveryEnabled(true);
        factory.setNetworkRecoveryInterval(500);
        factory.setConnectionTimeout(2000);
        Connection conn = factory.newConnection(new FollowerFirst(parse(args[2]), all));
        events.line(System.currentTimeMillis() + " connected connection "
                    + conn.getAddress().getHostAddress() + ":" + conn.getPort());
        conn.addShutdownListener(cause -> events.line(System.currentTimeMillis()
                                                      + " lost connection " + cause.getMessage()));
        RecoveryListener recoveries = new RecoveryListener() {
            @Override
            public void handleRecoveryStarted(Recoverable r) {
                events.line(System.currentTimeMillis() + " recovery-started connection");
            }

            @Override
            public void handleRecovery(Recoverable r) {
                Connection c = (Connection) r;
                events.line(System.currentTimeMillis() + " recovered connection "
                            + c.getAddress().getHostAddress() + ":" + c.getPort());
            }
        };
        if (conn instanceof RecoverableConnection) /* not when recovery is off */
            ((RecoverableConnection) conn).addRecoveryListener(recoveries);

        final Channel consumer = conn.createChannel();
        consumer.queueDeclare(queue, true, false, false, null);
        consumer.basicQos(50);
        consumer.basicConsume(queue, false, new DefaultConsumer(consumer) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props,
                                       byte[] body) throws IOException {
                long now = System.currentTimeMillis();
                lastDeliveryMs.set(now);
                String id = new String(body, StandardCharsets.US_ASCII);
                /* Logged before the ack: a message read but not acked comes again,
                 * redelivered, which the checker counts. */
                received.line(id + " " + (env.isRedeliver() ? 1 : 0) + " " + now);
                getChannel().basicAck(env.getDeliveryTag(), false);
            }
        });

        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                }
            } catch (IOException e) {
                /* stop as on end of input */
            }
            stopping = true;
        });
        stdin.setDaemon(true);
        stdin.start();

        Channel pub = conn.createChannel();
        pub.confirmSelect();
        long next = 0;
        while (!stopping) {
            List<Long> batch = new ArrayList<>();
            try {
                /* A recovery in the middle of a batch would leave its first messages on the
                 * lost channel while waitForConfirms waits on the new one: the sequence
                 * number (1 again on a recovered channel) tells. */
                long seqBefore = pub.getNextPublishSeqNo();
                for (int i = 0; i < BATCH; i++) {
                    long id = next++;
                    batch.add(id);
                    pub.basicPublish("", queue, MessageProperties.PERSISTENT_BASIC,
                                     Long.toString(id).getBytes(StandardCharsets.US_ASCII));
                }
                /* waitForConfirms rather than waitForConfirmsOrDie: OrDie closes the channel
                 * on a nack, and a channel the application closed is not recovered. */
                boolean allAcked = pub.waitForConfirms(CONFIRM_TIMEOUT_MS);
                long now = System.currentTimeMillis();
                Log to = allAcked ? confirmed : nacked;
                if (pub.getNextPublishSeqNo() != seqBefore + BATCH)
                    to = unknown;
                for (long id : batch)
                    to.line(id + " " + now);
            } catch (Exception e) {
                /* AlreadyClosedException or ShutdownSignalException while the connection is
                 * down, TimeoutException: none of the batch is known to be confirmed. */
                long now = System.currentTimeMillis();
                for (long id : batch)
                    unknown.line(id + " " + now);
                Thread.sleep(100);
                continue;
            }
            Thread.sleep(BATCH_PAUSE_MS);
        }

        long stopAt = System.currentTimeMillis();
        while (System.currentTimeMillis() - lastDeliveryMs.get() < IDLE_TO_STOP_MS
               && System.currentTimeMillis() - stopAt < STOP_DEADLINE_MS)
            Thread.sleep(100);
        events.line(System.currentTimeMillis() + " stopping connection " + next + " published");
        try {
            conn.close(5000);
        } catch (Exception e) {
            events.line(System.currentTimeMillis() + " close-failed connection " + e);
        }
        confirmed.close();
        unknown.close();
        nacked.close();
        received.close();
        events.close();
    }
}
