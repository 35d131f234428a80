"""The small core everything stands on: the review data and its splits, batches, the one training loop,
checkpoints, the run record, device and precision, energy meters, loss plots, atomic file writing and the
network guard. It knows nothing about GPTs, LoRA, profiles or notebooks, and imports no other layer.
"""
