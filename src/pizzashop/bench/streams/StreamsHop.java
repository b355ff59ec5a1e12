// One hop of the bench's Kafka Streams peer: every record of SOURCE copied to TARGET, as bytes.
//
//   java -cp 'JARS/*:CLASSES' StreamsHop BOOTSTRAP APPLICATION_ID SOURCE TARGET GUARANTEE STATE_DIR
//
// Configured as the Kafka Streams documentation recommends for exactly-once at low latency:
// processing.guarantee=exactly_once_v2 and commit.interval.ms=100 (a transaction per commit, so
// a record is visible downstream within a commit interval; 100 ms is the EOS default, set here
// so at_least_once runs commit as often). Everything else is Kafka Streams' own defaults:
// one stream thread, poll.ms=100, its producer's linger.ms=100 (under EOS a commit flushes).
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

public final class StreamsHop {
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 6) {
            System.err.println(
                "usage: StreamsHop BOOTSTRAP APPLICATION_ID SOURCE TARGET GUARANTEE STATE_DIR");
            System.exit(2);
        }
        Properties config = new Properties();
        config.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        config.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        config.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args[4]);
        config.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        config.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(args[2], Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .to(args[3], Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        KafkaStreams streams = new KafkaStreams(builder.build(), config);

        // Ends on SIGTERM (the shutdown hook closes the application) or on a fatal error
        // (Kafka Streams shuts the client down): the exit code tells the bench which.
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> streams.close(Duration.ofSeconds(10))));
        streams.start();
        stopped.await();
        System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
    }
}
