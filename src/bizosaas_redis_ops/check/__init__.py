"""Checking a deployment: verify (testinfra), smoke, monitor, and the Prometheus rules and Grafana dashboard."""
