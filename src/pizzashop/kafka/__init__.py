"""Apache Kafka, as the shop uses it: the local broker (the jars from Maven Central, its
nodes and their processes, TLS and SASL for a secured one), the topics, consumer lag and
whether a cluster can be reached."""
