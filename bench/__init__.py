"""Benchmarks. Run from the repository root as modules, e.g. `.venv/bin/python -m bench.icmp_round`;
each has a `--smoke` mode (tiny sizes, seconds) that tests/test_bench_smoke.py runs."""
