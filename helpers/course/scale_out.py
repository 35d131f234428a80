"""When one machine is not enough: pretrain the course's tiny GPT on several processes or GPUs at once.

    .venv/bin/torchrun --nproc_per_node=2 -m helpers.course.scale_out --profile ci     # 2 CPU processes
    .venv/bin/torchrun --nproc_per_node=8 -m helpers.course.scale_out --profile gpu    # 8 GPUs of one machine
    .venv/bin/python -m helpers.course.scale_out --profile ci                          # 1 process, for comparison

It is notebook 03's recipe (`helpers.course.catchup.pretrain_tiny_gpt`: same data, model, schedule and loop),
data-parallel. torchrun starts one process per device and sets WORLD_SIZE/RANK; the one training loop
(`helpers.core.training.train`) sees them, starts the process group (NCCL on GPUs, gloo on CPUs), wraps the
model in DistributedDataParallel and gives each process its slice of every batch. The profile's
`batch_size` stays the *global* batch, split over the processes, so 2 processes take the same steps as 1
and reach the same weights (up to the order of float sums in the gradient all-reduce; the test:
tests/test_scale_out.py). More processes make each step faster, not the recipe different.

Rank 0 saves the model and its run record where notebook 03's catch-up looks (artifacts/tiny_gpt, or --out):
trained with the profile's own sizes, it is the model notebooks 06 and 07 then load. `--max-steps` and
`--train-chars` make a quick try; a model trained with them is saved as made from those sizes, so the
notebooks do not mistake it for the profile's.

Left out on purpose: several machines' set-up (torchrun's --nnodes/--rdzv options do it, the code is the
same), tensor/pipeline parallelism and sharded optimisers (the tiny GPT fits on any device many times over),
elastic restarts (the loop's checkpoints resume a killed run).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from helpers.core.records import RunRecord
from helpers.course.artifacts import artifacts_dir, display_path
from helpers.course.catchup import GPT_DIR, course_tokenizer, pretrain_tiny_gpt, save_pretrained
from helpers.course.profiles import PROFILE_NAMES, Profile, get_profile
from helpers.scratch.gpt import GPT

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # TrainConfig.precision's values


def world() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) for a plain `python -m` run."""
    values = {}
    for name, default in (("RANK", "0"), ("WORLD_SIZE", "1")):
        raw = os.environ.get(name, default)
        try:
            values[name] = int(raw)
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not an integer: start the run with torchrun "
                             f"(it sets {name}), or unset it for one process") from None
    if not 0 <= values["RANK"] < max(values["WORLD_SIZE"], 1):
        raise ValueError(f"RANK={values['RANK']} is outside WORLD_SIZE={values['WORLD_SIZE']}: start the run with "
                         "torchrun, which sets both")
    return values["RANK"], values["WORLD_SIZE"]


def per_process(profile: Profile, world_size: int) -> Profile:
    """The profile with its global batch split over `world_size` processes: batch 16 on 2 -> 8 each."""
    batch = profile.pretrain.batch_size
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1 or batch % world_size:
        divisors = [d for d in range(1, batch + 1) if batch % d == 0]
        raise ValueError(
            f"{world_size} processes cannot split the {profile.name} profile's batch_size={batch} evenly: "
            f"start torchrun with --nproc_per_node in {divisors} (the global batch must stay the profile's)"
        )
    return replace(profile, pretrain=replace(profile.pretrain, batch_size=batch // world_size))


def scale_out(profile: Profile, out: Path | None = None, precision: str = "auto") -> tuple[GPT, RunRecord, Path | None]:
    """Pretrain `profile`'s tiny GPT on this process's share of the global batch; rank 0 saves it.

    Returns (model, record, folder); folder is None on the other ranks. Every process builds the course
    tokenizer itself (deterministic: they all reach the same merges, and the file is written atomically).
    """
    rank, world_size = world()
    local = per_process(profile, world_size)
    tokenizer = course_tokenizer(profile)
    model, record = pretrain_tiny_gpt(local, tokenizer, name=f"pretrain tiny GPT ({world_size} processes)",
                                      precision=precision)
    record.extra.update(global_batch_size=profile.pretrain.batch_size)
    if rank != 0:
        return model, record, None
    return model, record, save_pretrained(model, record, tokenizer, profile, out)


def _parse(argv: list[str] | None) -> tuple[Profile, Path | None, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILE_NAMES, help="default: COURSE_PROFILE, else gpu/cpu")
    parser.add_argument("--max-steps", type=int, help="fewer steps than the profile's, for a quick try")
    parser.add_argument("--train-chars", type=int, help="less review text than the profile's")
    parser.add_argument("--out", type=Path, help=f"where rank 0 saves the model (default artifacts/{GPT_DIR})")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: the loop's choice for the device (bf16 autocast where it helps)")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    changes = {k: v for k, v in (("max_steps", args.max_steps), ("train_chars", args.train_chars)) if v is not None}
    for name, value in changes.items():
        if value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    return replace(profile, pretrain=replace(profile.pretrain, **changes)), args.out, args.precision


def main(argv: list[str] | None = None) -> int:
    profile, out, precision = _parse(argv)
    rank, world_size = world()
    try:
        _, record, folder = scale_out(profile, out or artifacts_dir(GPT_DIR), precision)
    except ValueError as err:
        if rank == 0:
            print(f"scale_out: {err}", file=sys.stderr)
        return 2
    if rank == 0:
        s = profile.pretrain
        val = "not measured" if record.final_val_loss is None else f"{record.final_val_loss:.3f}"
        print(f"{world_size} process(es) x batch {s.batch_size // world_size} = global batch {s.batch_size}; "
              f"{record.steps} steps, {record.tokens:,} tokens in {record.wall_seconds:.1f} s; "
              f"val loss {val}; saved to {display_path(folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
