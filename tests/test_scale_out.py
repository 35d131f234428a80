"""helpers.course.scale_out: the tiny GPT pretrained by 2 CPU processes (torchrun, gloo) ends with the same
weights as by 1 process on the same global batch, and an uneven split is refused with the fix.

    COURSE_PROFILE=ci .venv/bin/python -m pytest tests/test_scale_out.py -q

A tiny run (the ci model, 3 steps on 20k characters) in subprocesses, about a minute on 2 busy cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from helpers.course.catchup import RUN_FILE
from helpers.course.profiles import get_profile
from helpers.course.scale_out import per_process
from helpers.scratch.gpt import GPT
from helpers.scratch.gpt_io import load_gpt
from helpers.scratch.pretrain import SEED

REPO = Path(__file__).resolve().parent.parent
QUICK = ["--profile", "ci", "--max-steps", "3", "--train-chars", "20000", "--precision", "fp32"]


def _run(launcher: list[str], out: Path, artifacts: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO),
           "COURSE_ARTIFACTS_DIR": str(artifacts)}
    return subprocess.run([*launcher, "-m", "helpers.course.scale_out", *QUICK, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO)


@pytest.mark.slow
def test_two_processes_reach_the_weights_of_one(tmp_path):
    artifacts = tmp_path / "artifacts"
    # One process first: it also builds the course tokenizer, which the two processes then load.
    one = _run([sys.executable], tmp_path / "one", artifacts)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = _run(torchrun, tmp_path / "two", artifacts)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es) x batch 8 = global batch 16; 3 steps" in two.stdout
    assert "1 process(es) x batch 16 = global batch 16; 3 steps" in one.stdout

    a, b = load_gpt(tmp_path / "one"), load_gpt(tmp_path / "two")
    ra, rb = (json.loads((tmp_path / name / RUN_FILE).read_text())["record"] for name in ("one", "two"))
    assert ra["tokens"] == rb["tokens"] == 3 * 16 * get_profile("ci").pretrain.block_size
    assert rb["extra"]["world_size"] == 2 and rb["extra"]["global_batch_size"] == 16
    # Not bit-identical: the all-reduce averages two half-batch gradients instead of one mean over 16 rows,
    # so float sums run in another order (~1e-7 in the losses). Adam divides each gradient by its own
    # running size, which turns those differences into ~1e-5 for the few weights whose gradient is ~0:
    # so the weights are compared against what training changed (measured ratio 1.3e-5; a batch split
    # wrongly, or gradients not averaged, gives a ratio near 1).
    assert ra["losses"] == pytest.approx(rb["losses"], abs=1e-6)
    torch.manual_seed(SEED)
    start = _flat(GPT(a.config))  # the initial weights both runs started from
    moved, apart = (_flat(a) - start).norm(), (_flat(b) - _flat(a)).norm()
    assert moved > 1.0 and apart / moved < 1e-3, (float(apart), float(moved))
    assert ((_flat(b) - _flat(a)).abs() > 1e-6).float().mean() < 1e-3  # all but a handful agree to 1e-6


def _flat(model) -> torch.Tensor:
    return torch.cat([p.flatten() for p in model.state_dict().values()])


def test_the_global_batch_is_split_evenly_or_refused():
    ci = get_profile("ci")
    assert per_process(ci, 2).pretrain.batch_size == ci.pretrain.batch_size // 2
    assert per_process(ci, 1) == ci
    odd = replace(ci, pretrain=replace(ci.pretrain, batch_size=6))
    with pytest.raises(ValueError, match=r"batch_size=6 evenly: .*--nproc_per_node in \[1, 2, 3, 6\]"):
        per_process(odd, 4)
