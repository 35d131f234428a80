"""What things cost: FLOP and parameter counts, sourced price and power assumptions, money for a run
record, the ledger, latency of a token stream and the local-vs-cloud break-even. Needs only `core`'s records.
"""
