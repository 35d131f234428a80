"""Batches for the training loop: endless, seeded, resumable, and shardable across processes.

The loop (`helpers.core.training`) only needs an iterator of dicts
`{"input_ids": LongTensor[B, T], "labels": LongTensor[B, T], optional "attention_mask", "position_ids"}`
(label -100 = ignore) with `state_dict()` / `load_state_dict()` so a killed run resumes at the same batch.
Two sources are enough for the course:

- `TokenBatches`: random contiguous windows from one long 1-D token stream (pretraining, nanoGPT's
  `get_batch`): input = tokens[i : i+T], labels = tokens[i+1 : i+T+1]. The window starts come from its own
  seeded `torch.Generator`, whose state is the data position.
- `ListBatches`: a list of ready batch dicts (instruction-tuning builds them), cycled in order or in a
  seeded shuffle per epoch.

Sharding for DDP: every process draws the same *global* batch and keeps its own slice, so 2 processes
with batch 4 see exactly the 8 rows that 1 process with batch 8 sees.

Identity: `fingerprint()` hashes what makes two sources the same data (contents, batch shape, seed; not
the position), so a checkpoint can tell a resume of its run from another run.

Left out: on-disk memory-mapped shards and background prefetching (the course's corpora fit in RAM).
"""

from __future__ import annotations

import hashlib
import numbers

import torch

IGNORE_INDEX = -100  # label value that cross-entropy skips (prompt tokens, padding)


def _positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _hash_tensor(h, t: torch.Tensor) -> None:
    t = t.detach().cpu().contiguous().reshape(-1)
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes())


class TokenBatches:
    """Random windows of `block_size` tokens from a 1-D stream, `batch_size` rows per batch.

    >>> b = TokenBatches(torch.arange(100), batch_size=2, block_size=4, seed=0)
    >>> x = next(b); (x["input_ids"][:, 1:] == x["labels"][:, :-1]).all().item()
    True
    """

    def __init__(
        self,
        tokens: torch.Tensor,
        batch_size: int,
        block_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 1:
            raise ValueError(
                f"tokens must be a 1-D tensor of token ids, got shape {tuple(tokens.shape)}: "
                "flatten the corpus into one stream (e.g. torch.cat of encoded documents)"
            )
        if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be integer token ids, got dtype {tokens.dtype}: encode the text with "
                             "a tokenizer (a float tensor would be truncated silently)")
        batch_size, block_size = _positive_int("batch_size", batch_size), _positive_int("block_size", block_size)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if len(tokens) and int(tokens.min()) < 0:
            raise ValueError(f"tokens contains the negative id {int(tokens.min())}: token ids start at 0 "
                             "(-100 belongs in labels, never in the token stream)")
        if len(tokens) < block_size + 1:
            raise ValueError(
                f"a window of block_size={block_size} needs {block_size + 1} tokens but the data has "
                f"{len(tokens)}: use more text or a smaller block_size"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.tokens = tokens.long()
        self.batch_size = batch_size  # rows per process
        self.block_size = block_size  # T: the sequence length the model must accept
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.n_windows = len(tokens) - block_size  # valid start positions
        if batch_size * world_size > self.n_windows:
            raise ValueError(
                f"a batch of {batch_size * world_size} windows (batch_size={batch_size} x {world_size} "
                f"processes) is larger than the data, which has only {self.n_windows} distinct windows of "
                f"{block_size} tokens: use a smaller batch_size or block_size, or more text"
            )
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_drawn = 0

    @property
    def seq_len(self) -> int:
        return self.block_size

    @property
    def max_token_id(self) -> int:
        return int(self.tokens.max())

    def __iter__(self) -> TokenBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        B, T = self.batch_size, self.block_size
        # Every process draws the whole global batch (same generator, same state), then keeps its rows.
        starts = torch.randint(self.n_windows, (B * self.world_size,), generator=self.generator)
        starts = starts[self.rank * B : (self.rank + 1) * B]  # (B,)
        offsets = starts[:, None] + torch.arange(T + 1)  # (B, T+1)
        window = self.tokens[offsets]  # (B, T+1)
        self.batches_drawn += 1
        # subtle: copies, not views of one window, so masking labels in place cannot change the inputs
        return {"input_ids": window[:, :-1].contiguous(), "labels": window[:, 1:].contiguous()}  # (B, T) each

    def fingerprint(self) -> str:
        """Hash of the tokens, the global batch shape and the seed: equal for the same data, whatever its position."""
        h = hashlib.sha256()
        _hash_tensor(h, self.tokens)
        h.update(f"TokenBatches B={self.batch_size * self.world_size} T={self.block_size} seed={self.seed}".encode())
        return h.hexdigest()[:16]

    def shard(self, rank: int, world_size: int) -> TokenBatches:
        """The same stream for process `rank` of `world_size` (same seed, its slice of each global batch)."""
        out = TokenBatches(self.tokens, self.batch_size, self.block_size, self.seed, rank, world_size)
        out.load_state_dict(self.state_dict())
        return out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.batches_drawn = int(state["batches_drawn"])


class ListBatches:
    """Cycle through ready batch dicts; `shuffle=True` reorders them per epoch with a seeded generator.

    >>> lb = ListBatches([{"input_ids": torch.zeros(2, 3, dtype=torch.long),
    ...                    "labels": torch.zeros(2, 3, dtype=torch.long)}])
    >>> next(lb)["input_ids"].shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        batches: list[dict[str, torch.Tensor]],
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not isinstance(batches, (list, tuple)):
            raise TypeError(f"batches must be a list of batch dicts, got {type(batches).__name__}: "
                            "materialise it with list(...)")
        if len(batches) == 0:
            raise ValueError("ListBatches got no batches: build at least one batch dict")
        if not isinstance(shuffle, bool):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        for i, batch in enumerate(batches):
            if not isinstance(batch, dict):
                raise TypeError(f"batch {i} is a {type(batch).__name__}, not a dict with 'input_ids' and 'labels'")
            if "input_ids" not in batch or "labels" not in batch:
                raise ValueError(
                    f"batch {i} has keys {sorted(batch)}: each batch needs 'input_ids' and 'labels'"
                )
            if batch["input_ids"].shape != batch["labels"].shape or batch["input_ids"].dim() != 2:
                raise ValueError(
                    f"batch {i}: input_ids {tuple(batch['input_ids'].shape)} and labels "
                    f"{tuple(batch['labels'].shape)} must both be [B, T]"
                )
            if batch["input_ids"].is_floating_point():
                raise ValueError(f"batch {i}: input_ids has dtype {batch['input_ids'].dtype}; token ids must be "
                                 "integers (torch.long)")
            if batch["input_ids"].shape[0] % world_size:
                raise ValueError(
                    f"batch {i} has {batch['input_ids'].shape[0]} rows, which {world_size} processes "
                    "cannot split evenly: make the batch size a multiple of the process count"
                )
        self.batches = batches
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.position = 0  # batches served so far (across epochs)
        self._order: list[int] = []
        self._epoch = -1

    @property
    def seq_len(self) -> int:
        return max(b["input_ids"].shape[1] for b in self.batches)

    @property
    def max_token_id(self) -> int:
        return max(int(b["input_ids"].max()) for b in self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def _order_for(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            if self.shuffle:
                g = torch.Generator().manual_seed(self.seed + epoch)
                self._order = torch.randperm(len(self.batches), generator=g).tolist()
            else:
                self._order = list(range(len(self.batches)))
            self._epoch = epoch
        return self._order

    def __iter__(self) -> ListBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        epoch, index = divmod(self.position, len(self.batches))
        batch = self.batches[self._order_for(epoch)[index]]
        self.position += 1
        if self.world_size == 1:
            return batch
        rows = batch["input_ids"].shape[0] // self.world_size
        lo = self.rank * rows
        return {k: v[lo : lo + rows] for k, v in batch.items()}

    def fingerprint(self) -> str:
        """Hash of every batch's tensors and their order (shuffle, seed), whatever the position."""
        h = hashlib.sha256(f"ListBatches shuffle={self.shuffle} seed={self.seed}".encode())
        for batch in self.batches:
            for key in sorted(batch):
                h.update(key.encode())
                _hash_tensor(h, batch[key])
        return h.hexdigest()[:16]

    def shard(self, rank: int, world_size: int) -> ListBatches:
        out = ListBatches(self.batches, self.shuffle, self.seed, rank, world_size)
        out.load_state_dict(self.state_dict())
        return out

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])
