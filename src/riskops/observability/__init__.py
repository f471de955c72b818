"""Prometheus rules, the platform exporter and Grafana dashboards (issue 10)."""
