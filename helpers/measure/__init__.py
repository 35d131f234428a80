"""What things cost: FLOP and parameter counts (`flops`, the one owner of every N), sourced price and power
assumptions, energy and money for a run record (`money`), run records side by side (`ledger`), latency of
a token stream and the local-vs-cloud break-even. Needs only `core`'s records and atomic writes.
"""
