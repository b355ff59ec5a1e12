"""pizzashop: a pizza takeaway shop run as event-driven microservices on Apache Kafka."""

__version__ = "0.1.0"
