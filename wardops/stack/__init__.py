"""The local monitoring stack: VictoriaMetrics, vmagent, vmalert, Alertmanager and a webhook receiver."""
