// A department's system connected to gridhub, in one file, on the JVM
// (docs/CONNECTING.md): it publishes with publisher confirms and consumes
// the events the hub sends back, acknowledging each by hand once handled
// and handling each event_id once. Java 17 and the RabbitMQ Java client
// (Debian: librabbitmq-client-java, which brings libslf4j-java); no other
// library. Run it from source:
//
//   CP=/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar
//   java -cp $CP Department.java publish [--amqp-type v2] [--case CASE_NO] FILE
//   java -cp $CP Department.java work --reply [VERSION:]FILE ... [--seen FILE] [--idle S] [--stop-before-ack]
//
// publish: publishes FILE with confirms; exit 1 if the broker did not take it.
// work: consumes events; to each new case.dispatched, replies with the files
// given, the case's number put in; stops after S seconds without an event.
//
// Settings, from the environment or the option of the same name:
//
//   HUB_AMQP_URL   --amqp-url   amqps://dept-housing:PASSWORD@mq.district:5671/%2f
//                               (its user is the user_id of every message)
//   HUB_CA_FILE    --ca-file    the CA that signed the broker's certificate
//   HUB_CONNECTOR  --connector  dept-housing
//   HUB_EXCHANGE   --exchange   gridhub.in
//   HUB_QUEUE      --queue      gridhub.out.<connector>

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.Delivery;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class Department {

    // --- Settings -------------------------------------------------------------

    static final class Settings {
        String command;
        String amqpUrl = System.getenv("HUB_AMQP_URL");
        String caFile = System.getenv("HUB_CA_FILE");
        String connector = env("HUB_CONNECTOR", "dept-housing");
        String exchange = env("HUB_EXCHANGE", "gridhub.in");
        String queue = System.getenv("HUB_QUEUE");
        String type = "feedback";
        String caseField = "AJBH";
        String amqpType;
        String caseNo;
        String file;
        List<String> replies = new ArrayList<>();
        Path seen = Path.of("department-seen.txt");
        double idle = 30;
        boolean stopBeforeAck;

        static Settings parse(String[] argv) {
            Settings s = new Settings();
            if (argv.length == 0 || !(argv[0].equals("publish") || argv[0].equals("work"))) {
                usage("publish or work");
            }
            s.command = argv[0];
            for (int i = 1; i < argv.length; i++) {
                String arg = argv[i];
                switch (arg) {
                    case "--amqp-url" -> s.amqpUrl = value(argv, ++i);
                    case "--ca-file" -> s.caFile = value(argv, ++i);
                    case "--connector" -> s.connector = value(argv, ++i);
                    case "--exchange" -> s.exchange = value(argv, ++i);
                    case "--queue" -> s.queue = value(argv, ++i);
                    case "--type" -> s.type = value(argv, ++i);
                    case "--case-field" -> s.caseField = value(argv, ++i);
                    case "--amqp-type" -> s.amqpType = value(argv, ++i);
                    case "--case" -> s.caseNo = value(argv, ++i);
                    case "--reply" -> s.replies.add(value(argv, ++i));
                    case "--seen" -> s.seen = Path.of(value(argv, ++i));
                    case "--idle" -> s.idle = Double.parseDouble(value(argv, ++i));
                    case "--stop-before-ack" -> s.stopBeforeAck = true;
                    default -> {
                        if (arg.startsWith("--") || s.file != null) {
                            usage("unexpected " + arg);
                        }
                        s.file = arg;
                    }
                }
            }
            if (s.amqpUrl == null) {
                usage("set HUB_AMQP_URL or --amqp-url");
            }
            if (s.queue == null) {
                s.queue = "gridhub.out." + s.connector;
            }
            if (s.command.equals("publish") && s.file == null) {
                usage("publish: which file?");
            }
            if (s.command.equals("work") && s.replies.isEmpty()) {
                usage("work: --reply [VERSION:]FILE, at least one");
            }
            return s;
        }

        static String env(String name, String otherwise) {
            String value = System.getenv(name);
            return value == null ? otherwise : value;
        }

        static String value(String[] argv, int i) {
            if (i >= argv.length) {
                usage(argv[i - 1] + " needs a value");
            }
            return argv[i];
        }

        static void usage(String problem) {
            System.err.println("Department.java: " + problem);
            System.exit(2);
        }
    }

    // --- Messages -------------------------------------------------------------

    /**
     * A message's bytes, with the case number put in the field named
     * caseField. Your system builds its messages from its own records; this
     * example starts from a sample of the contract.
     */
    static byte[] readMessage(String path, String caseNo, String caseField) throws IOException {
        String text = Files.readString(Path.of(path), StandardCharsets.UTF_8);
        if (caseNo != null) {
            Matcher field = Pattern.compile("(\"" + Pattern.quote(caseField) + "\"\\s*:\\s*\")[^\"]*(\")").matcher(text);
            if (!field.find() || field.find()) {
                throw new IOException(path + " names no single " + caseField);
            }
            text = field.replaceFirst("$1" + Matcher.quoteReplacement(caseNo) + "$2");
        }
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * A stable message_id: the same message always gets the same id, so a
     * message sent again (after a timeout, a crash, a restart) has no second
     * effect. Here the SHA-256 of what the hub judges: the routing key, the
     * type property and the body. A corrected message, whether its body or
     * its type property changed, is a new message with a new id; an id your
     * system already keeps for each message does as well.
     */
    static String messageIdOf(String routingKey, String amqpType, byte[] body) throws Exception {
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        String head = routingKey + "\n" + (amqpType == null ? "" : amqpType) + "\n";
        digest.update(head.getBytes(StandardCharsets.UTF_8));
        return HexFormat.of().formatHex(digest.digest(body));
    }

    /**
     * One string field of an event. A JSON library (Jackson, Gson) reads
     * events in your system; this example keeps to the JDK and the AMQP
     * client, and reads only fields whose values have no escaped characters
     * (ids, case numbers, names of events, times).
     */
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\"\\s*:\\s*\"([^\"\\\\]*)\"").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    // --- The broker -----------------------------------------------------------

    static Connection connect(Settings s) throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        // amqps:// turns TLS on, trusting any certificate: replaced below by
        // the hub's CA and a check of the broker's name.
        factory.setUri(s.amqpUrl);
        if (s.amqpUrl.startsWith("amqps://")) {
            factory.useSslProtocol(tlsContext(s.caFile));
            factory.setSocketConfigurator(socket -> {
                SSLSocket tls = (SSLSocket) socket;
                SSLParameters parameters = tls.getSSLParameters();
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
                tls.setSSLParameters(parameters);
                socket.setTcpNoDelay(true);
            });
        }
        // Stop on a lost connection: run the program under a supervisor that
        // starts it again; what was not acknowledged comes again.
        factory.setAutomaticRecoveryEnabled(false);
        return factory.newConnection("department example");
    }

    /** Trusts the CA in caFile (PEM), or the JVM's roots without one. */
    static SSLContext tlsContext(String caFile) throws Exception {
        KeyStore trusted = null;
        if (caFile != null) {
            trusted = KeyStore.getInstance(KeyStore.getDefaultType());
            trusted.load(null, null);
            try (InputStream in = Files.newInputStream(Path.of(caFile))) {
                int n = 0;
                for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                    trusted.setCertificateEntry("ca" + n++, ca);
                }
            }
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trusted);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, trust.getTrustManagers(), null);
        return context;
    }

    /** A channel in confirm mode whose returned (unroutable) messages are noted. */
    static final class Publisher {
        final Settings s;
        final String user;
        final Channel channel;
        final AtomicReference<String> returned = new AtomicReference<>();

        Publisher(Settings s, Connection connection) throws IOException {
            this.s = s;
            // The user the URL logs in as: every message's user_id must be it.
            this.user = userOf(s.amqpUrl);
            this.channel = connection.createChannel();
            channel.confirmSelect();
            channel.addReturnListener((code, text, exchange, routingKey, properties, body) ->
                returned.set(code + " " + text));
        }

        /**
         * Publishes one message and returns once the broker has confirmed it
         * (then the message is the hub's). Throws if the broker refused it
         * or no queue took it.
         */
        String publish(byte[] body, String amqpType) throws Exception {
            String routingKey = s.connector + "." + s.type;
            String messageId = messageIdOf(routingKey, amqpType, body);
            AMQP.BasicProperties properties = new AMQP.BasicProperties.Builder()
                .messageId(messageId)
                .userId(user) // the broker checks it is the connection's user
                .contentType("application/json")
                .type(amqpType) // null: v1; "v2": the format's version 2
                .deliveryMode(2) // persistent
                .build();
            returned.set(null);
            // mandatory: a message no queue takes comes back, an error
            channel.basicPublish(s.exchange, routingKey, true, properties, body);
            channel.waitForConfirmsOrDie(30_000);
            if (returned.get() != null) {
                throw new IOException("no queue took it: " + returned.get());
            }
            return messageId;
        }
    }

    static String userOf(String url) {
        String userInfo = java.net.URI.create(url).getUserInfo();
        String user = userInfo == null ? "" : userInfo.split(":", 2)[0];
        return java.net.URLDecoder.decode(user, StandardCharsets.UTF_8);
    }

    static int publish(Settings s) throws Exception {
        byte[] body = readMessage(s.file, s.caseNo, s.caseField);
        try (Connection connection = connect(s)) {
            String messageId = new Publisher(s, connection).publish(body, s.amqpType);
            System.out.printf("%s: published as %s.%s %s, message_id %s: confirmed%n",
                s.file, s.connector, s.type, s.amqpType == null ? "v1" : s.amqpType, messageId);
            return 0;
        } catch (IOException | java.util.concurrent.TimeoutException e) {
            // Refused by the broker (ACCESS_REFUSED, a nack), returned
            // (unroutable), or no connection (TLS included): not the hub's.
            // Send it again later.
            System.out.printf("%s: NOT published: %s%n", s.file, e);
            return 1;
        }
    }

    // --- Consuming events, each event_id once ---------------------------------

    /**
     * The event_ids already handled, kept across restarts: one a line,
     * appended and forced to disk before the event is acknowledged. The hub
     * sends each event at least once, so one may come twice; the second is
     * recognised here and only acknowledged. In your system, record the
     * event_id in the same transaction as what the event does.
     */
    static final class Seen {
        final Path path;
        final Set<String> ids = new HashSet<>();

        Seen(Path path) throws IOException {
            this.path = path;
            if (Files.exists(path)) {
                byte[] all = Files.readAllBytes(path);
                int end = 0;
                for (int i = 0; i < all.length; i++) {
                    if (all[i] == '\n') {
                        end = i + 1;
                    }
                }
                // A line cut short by a crash is not an id: drop it.
                if (end < all.length) {
                    try (FileChannel file = FileChannel.open(path, StandardOpenOption.WRITE)) {
                        file.truncate(end);
                    }
                }
                ids.addAll(List.of(new String(all, 0, end, StandardCharsets.UTF_8).split("\n")));
            }
        }

        boolean contains(String eventId) {
            return ids.contains(eventId);
        }

        void add(String eventId) throws IOException {
            try (FileChannel file = FileChannel.open(path, StandardOpenOption.CREATE,
                    StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
                file.write(ByteBuffer.wrap((eventId + "\n").getBytes(StandardCharsets.UTF_8)));
                file.force(true);
            }
            ids.add(eventId);
        }
    }

    static int work(Settings s) throws Exception {
        Seen seen = new Seen(s.seen);
        Connection connection = connect(s);
        Publisher publisher = new Publisher(s, connection);
        Channel consumer = connection.createChannel();
        consumer.basicQos(10);
        BlockingQueue<Delivery> deliveries = new LinkedBlockingQueue<>();
        // autoAck false: each event is acknowledged by hand, once handled.
        consumer.basicConsume(s.queue, false, (tag, delivery) -> deliveries.add(delivery), tag -> { });
        System.out.printf("consuming %s as %s%n", s.queue, publisher.user);
        int received = 0;
        int handled = 0;
        long idle = (long) (s.idle * 1000);
        Delivery delivery;
        while ((delivery = deliveries.poll(idle, TimeUnit.MILLISECONDS)) != null) {
            received++;
            long tag = delivery.getEnvelope().getDeliveryTag();
            String event = new String(delivery.getBody(), StandardCharsets.UTF_8);
            // event_id is also the message's message_id. An event without one
            // is not the hub's: stop without acknowledging it, so it is not lost.
            String eventId = field(event, "event_id");
            if (eventId == null) {
                throw new IOException("an event without event_id, left in the queue");
            }
            String name = field(event, "event");
            String caseNo = field(event, "case_no");
            System.out.printf("event %s%s: %s %s%n", eventId,
                delivery.getEnvelope().isRedeliver() ? " (redelivered)" : "", name, caseNo);
            if (seen.contains(eventId)) {
                consumer.basicAck(tag, false);
                System.out.println("  already handled: acknowledged");
                continue;
            }
            if ("case.dispatched".equals(name)) {
                System.out.printf("  due %s, %s%n", field(event, "due_at"), field(event, "role"));
                // A reply the broker refuses throws: the program ends before
                // the ack, the event comes again, and the replies already
                // confirmed are recognised by their message_id.
                for (String reply : s.replies) {
                    Matcher versioned = Pattern.compile("(v[0-9]+):(.*)").matcher(reply);
                    String version = versioned.matches() ? versioned.group(1) : null;
                    String path = versioned.matches() ? versioned.group(2) : reply;
                    byte[] body = readMessage(path, caseNo, s.caseField);
                    String messageId = publisher.publish(body, version);
                    System.out.printf("  replied %s.%s %s, message_id %s: confirmed%n",
                        s.connector, s.type, version == null ? "v1" : version, messageId);
                }
            }
            seen.add(eventId);
            handled++;
            if (s.stopBeforeAck) {
                System.out.println("  handled; stopping before the ack, as a crash would");
                connection.close();
                return 0;
            }
            consumer.basicAck(tag, false);
            System.out.println("  handled: acknowledged");
        }
        connection.close();
        System.out.printf("no event for %s s: %d received, %d handled%n",
            s.idle % 1 == 0 ? String.valueOf((long) s.idle) : String.valueOf(s.idle), received, handled);
        return 0;
    }

    public static void main(String[] argv) {
        Settings s = Settings.parse(argv);
        try {
            System.exit(s.command.equals("publish") ? publish(s) : work(s));
        } catch (Exception e) {
            // The connection ends with the process: the broker delivers
            // again what was not acknowledged.
            System.err.println("Department.java: " + e);
            System.exit(1);
        }
    }
}
