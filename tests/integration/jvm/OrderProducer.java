import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The plain Apache Kafka Java producer, with its default settings (so its default partitioner:
 * murmur2 of the key), as Kafka Streams, ksqlDB, Connect and the console producer use it.
 *
 * Usage: java -cp 'KAFKA_JARS/*' OrderProducer.java BOOTSTRAP TOPIC
 * Reads "KEY<TAB>VALUE" lines on stdin, produces each, and prints "KEY<TAB>PARTITION" once
 * the broker has acknowledged it.
 */
public class OrderProducer {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        config.put("bootstrap.servers", args[0]);
        config.put("key.serializer", StringSerializer.class.getName());
        config.put("value.serializer", StringSerializer.class.getName());
        BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(config)) {
            String line;
            while ((line = lines.readLine()) != null) {
                String[] keyAndValue = line.split("\t", 2);
                RecordMetadata written = producer.send(
                    new ProducerRecord<>(args[1], keyAndValue[0], keyAndValue[1])).get();
                System.out.println(keyAndValue[0] + "\t" + written.partition());
                System.out.flush();
            }
        }
    }
}
