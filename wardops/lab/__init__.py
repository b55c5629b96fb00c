"""A simulated network of namespaces: prober and targets, misbehaviour via nftables."""
