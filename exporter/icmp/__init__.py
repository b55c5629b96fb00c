"""ICMP echo: packet codec, sockets, the batched round engine and the exporter component."""
