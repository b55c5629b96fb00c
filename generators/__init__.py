"""`wardops generate`: vmalert rules, Alertmanager config, Grafana dashboards and vmagent config
from the inventory (plus optional SETTINGS)."""
