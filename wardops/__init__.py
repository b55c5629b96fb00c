"""wardops: network reachability monitoring for Prometheus/VictoriaMetrics."""

__version__ = "0.1.0"
