"""wardops: network reachability monitoring for Prometheus/VictoriaMetrics."""

from exporter.version import __version__

__all__ = ["__version__"]
