"""The Perpool demo: a complete exchange run on a localnet, with the keeper, ending in a report.

``python -m perpool.demo`` (what ``./scripts/demo.sh`` runs) starts a localnet, sets up the
pool from the shipped spec, lets liquidity providers deposit and a crowd of traders trade while
the real ``perpool-keeper`` daemon replays a price path with a sharp drop (posting prices,
accruing borrow and funding, refreshing AUM, liquidating), compresses the timeline with the
localnet's clock control, samples the pool from the chain after every step and writes a PNG
report, a text summary and the time series as JSON.

Modules: :mod:`.pricepath` (the price path and its CSV files), :mod:`.actors` (liquidity
providers, traders and their plans), :mod:`.keeper` (the keeper daemon as a subprocess),
:mod:`.sampling` (chain state and liquidation events), :mod:`.report` (plot, summary, JSON),
:mod:`.run` (the timeline) and :mod:`.cli` (options, the localnet).
"""
