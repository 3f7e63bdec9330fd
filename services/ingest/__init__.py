"""Ingest: the Segment-compatible tracking API and CRM CloudEvents, published to Kafka."""
