"""Route A, built from scratch: byte-level BPE (and the reference tokenizers it is tested against), the
project's parallel English/Italian text, the tiny GPT and its pretraining recipe. Stands on `core` (and
`measure` for FLOP counts); never imports `instruct`, `deploy`, `experiment` or `course`.
"""
