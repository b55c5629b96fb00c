"""The wardops exporter: batched ICMP (and SNMP) probing, device state, Prometheus exposition."""
