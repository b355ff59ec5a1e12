"""Seeing inside the shop while it runs, in one place for every process.

- `metrics.py`: the Prometheus metrics, each defined once with its labels.
- `health.py`: what a service's Kafka client says about it (group, lag), and readiness.
- `server.py`: the small HTTP server of a service process: /healthz, /readyz, /metrics.
- `tracing.py`: OpenTelemetry traces across the services through a `traceparent` header.
- `logs.py`: the log lines, the seed's text or one JSON object a line.
"""
