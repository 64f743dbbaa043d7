"""Telemetry: Prometheus metrics (aioprometheus), OpenTelemetry traces, loguru JSON logs, drift."""
