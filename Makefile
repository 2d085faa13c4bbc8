# make bench: the benchmarks against the anchors (node_exporter, a bare aiohttp handler, snmpbulkwalk),
# one run on this machine, written to docs/benchmarks.md. BENCH_ARGS go to `python -m bench`.
.PHONY: bench bench-quick

bench:
	bash scripts/bench.sh $(BENCH_ARGS)

bench-quick:
	bash scripts/bench.sh --quick $(BENCH_ARGS)
