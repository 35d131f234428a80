"""Tests for helpers.core.training, the one loop, on a ~10k-parameter stand-in model (tests/training_worker.py).

Proves: the loop equals a bare PyTorch loop; a run SIGKILLed after a checkpoint resumes to identical
weights and losses; 2 DDP processes equal 1 process on the same global batch; a checkpoint belongs to its
run (resume refuses another run's, pruning never drops a run's newest, two runs can share a folder); a full
disk or a killed write loses nothing; broken checkpoints, batches larger than the data, data that does not
fit the model and NaN losses stop with clear errors. The one-argument-at-a-time table of bad inputs is
tests/test_bad_inputs_core.py.

Run: .venv/bin/python -m pytest tests/test_training.py -q      (~1 min; the subprocess tests are `slow`)
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_worker import BLOCK, VOCAB, TinyLM, make_model, make_tokens

from helpers.core.batches import ListBatches, TokenBatches
from helpers.core.checkpoints import Checkpoint, CheckpointError, list_checkpoints, load_checkpoint
from helpers.core.io import DiskFullError
from helpers.core.loop_parts import default_loss_fn, optimizer_groups
from helpers.core.records import RunRecord
from helpers.core.train_config import lr_factor
from helpers.core.training import Callback, TrainConfig, TrainingDivergedError, train

WORKER = Path(__file__).resolve().parent / "training_worker.py"
REPO = WORKER.parent.parent


def _config(**changes) -> TrainConfig:
    base = dict(
        max_steps=6, lr=1e-2, warmup_steps=2, precision="fp32", device="cpu", peak_flops=1e9, progress=False
    )
    return TrainConfig(**{**base, **changes})


def _data(batch_size: int = 8, seed: int = 1, block_size: int = BLOCK) -> TokenBatches:
    return TokenBatches(make_tokens(), batch_size=batch_size, block_size=block_size, seed=seed)


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run_worker(*args: str, torchrun: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        if torchrun
        else [sys.executable]
    )
    return subprocess.run(
        [*launcher, str(WORKER), *args], env=env, capture_output=True, text=True, timeout=300
    )


# ----------------------------------------------------------------------------- the loop itself


def test_loop_equals_a_bare_pytorch_loop():
    """Same seed, same batches, same optimiser: bit-identical weights after a few steps."""
    model = make_model()
    bare = copy.deepcopy(model)
    config = _config(max_steps=5, grad_clip=1.0)
    train(model, _data(), config)

    data = _data()
    opt = torch.optim.AdamW(
        optimizer_groups(bare, config.weight_decay),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        fused=True,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, config))
    torch.manual_seed(config.seed)
    for _ in range(config.max_steps):
        batch = next(data)
        logits, _ = bare(batch["input_ids"])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), batch["labels"].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(bare.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
    assert _weights_equal(model.state_dict(), bare.state_dict())


def test_record_is_filled_and_round_trips(tmp_path):
    n = sum(p.numel() for p in make_model().parameters())
    config = _config(eval_interval=3, flops_per_token=6.0 * n, flops_method="6N, N = all parameters")
    record = train(make_model(), _data(), config, eval_data=_data(seed=9))
    assert record.steps == 6 and len(record.losses) == 6
    assert record.losses[-1] < record.losses[0]  # it learns
    assert [s for s, _ in record.val_losses] == [3, 6]
    assert record.tokens == 6 * 8 * BLOCK and record.extra["label_tokens"] == record.tokens
    assert record.total_params == record.trainable_params == n
    assert record.flops == 6 * n * record.tokens and record.flops_method == "6N, N = all parameters"
    assert record.mfu == pytest.approx(record.achieved_flops_per_s / 1e9)
    assert record.peak_memory_bytes > 0 and record.wall_seconds > 0
    assert RunRecord.load(record.save(tmp_path / "r.json")) == record


def test_flops_not_counted_without_a_count_from_the_caller(tmp_path):
    """The loop has no FLOP formula of its own: without flops_per_token the record says so (None, not a guess)."""
    record = train(make_model(), _data(), _config(max_steps=2))
    assert record.flops is None and record.mfu is None and record.achieved_flops_per_s is None
    assert record.flops_method.startswith("not counted") and "helpers.measure.flops" in record.flops_method
    assert RunRecord.load(record.save(tmp_path / "r.json")) == record


def test_grad_accumulation_matches_a_bigger_batch():
    """2 micro-batches of 4 = 1 batch of 8 when the 8 rows are the same (ListBatches splits one batch)."""
    rows = next(_data(batch_size=8))
    halves = [{k: v[:4] for k, v in rows.items()}, {k: v[4:] for k, v in rows.items()}]
    a, b = make_model(), make_model()
    train(a, ListBatches([rows]), _config(max_steps=1))
    train(b, ListBatches(halves), _config(max_steps=1, grad_accum_steps=2))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=False):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=name)  # float sums in another order


def test_schedule_warms_up_then_decays():
    c = TrainConfig(max_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(s, c) for s in range(100)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert all(x >= y for x, y in zip(factors[10:], factors[11:], strict=False))
    assert factors[-1] == pytest.approx(0.1)


def test_weight_decay_groups_skip_biases_and_norms():
    groups = optimizer_groups(make_model(), 0.1)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert all(p.dim() >= 2 for g in groups if g["weight_decay"] > 0 for p in g["params"])
    assert all(
        p.dim() < 2 and id(p) not in decayed for g in groups if g["weight_decay"] == 0 for p in g["params"]
    )


def test_callbacks_see_every_step():
    class Count(Callback):
        def __init__(self):
            self.steps, self.ended = [], False

        def on_step_end(self, state):
            self.steps.append(state.step)

        def on_train_end(self, state):
            self.ended = True

    cb = Count()
    train(make_model(), _data(), _config(max_steps=3), callbacks=[cb])
    assert cb.steps == [1, 2, 3] and cb.ended


def test_transformers_model_trains_with_the_default_loss():
    """The instruct route's models (transformers: output.logits, attention_mask) need no adapter code."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=BLOCK, n_embd=16, n_layer=1, n_head=2)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    batch = next(_data(batch_size=4))
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch["attention_mask"][0, -4:] = 0  # right padding: not counted as tokens
    batch["labels"][0, -4:] = -100
    record = train(model, ListBatches([batch]), _config(max_steps=3))
    assert record.losses[-1] < record.losses[0]
    assert record.tokens == 3 * (4 * BLOCK - 4) and record.extra["label_tokens"] == record.tokens


def test_peft_lora_model_trains_checkpoints_and_resumes(tmp_path):
    """Instruct route: a peft LoRA model trains with the default loss; checkpoints hold the adapter only."""
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")

    def lora_model():
        torch.manual_seed(0)
        config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=BLOCK, n_embd=16, n_layer=1, n_head=2)
        lora = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM")
        return peft.get_peft_model(transformers.GPT2LMHeadModel(config), lora)

    config = _config(max_steps=4, weight_decay=0.0, checkpoint_dir=tmp_path, checkpoint_interval=2)
    straight = lora_model()
    record = train(straight, _data(batch_size=4), config)
    assert record.losses[-1] < record.losses[0]
    assert 0 < record.trainable_params < record.total_params
    saved = load_checkpoint(tmp_path / "step_0000002.pt")
    assert saved.model_partial and all("lora_" in k for k in saved.model)
    resumed = lora_model()
    again = train(
        resumed,
        _data(batch_size=4),
        TrainConfig(**{**config.__dict__, "resume": str(tmp_path / "step_0000002.pt")}),
    )
    assert again.losses == record.losses
    assert _weights_equal(resumed.state_dict(), straight.state_dict())


# ----------------------------------------------------------------------------- checkpoints and resume


@pytest.mark.slow
def test_sigkill_after_checkpoint_then_resume_equals_uninterrupted(tmp_path):
    ckpt = tmp_path / "ckpt"
    common = ["--steps", "6", "--dropout", "0.1"]  # dropout: the RNG state must be restored too
    killed = _run_worker(
        str(tmp_path / "killed.pt"),
        *common,
        "--checkpoint-dir",
        str(ckpt),
        "--interval",
        "2",
        "--kill-at-step",
        "4",
    )
    assert killed.returncode == -9, killed.stderr  # really killed: no clean-up ran
    assert [p.name for p in list_checkpoints(ckpt)] == ["step_0000002.pt", "step_0000004.pt"]
    resumed = _run_worker(
        str(tmp_path / "resumed.pt"), *common, "--checkpoint-dir", str(ckpt), "--interval", "2", "--resume"
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = _run_worker(str(tmp_path / "straight.pt"), *common)
    assert straight.returncode == 0, straight.stderr
    a, b = torch.load(tmp_path / "resumed.pt"), torch.load(tmp_path / "straight.pt")
    assert a["losses"] == b["losses"] and len(a["losses"]) == 6
    assert a["tokens"] == b["tokens"]
    assert _weights_equal(a["weights"], b["weights"])


def test_in_process_resume_is_exact(tmp_path):
    """The same property without subprocesses: 4 steps + 4 more from the checkpoint = 8 straight."""
    config = _config(max_steps=8, checkpoint_dir=tmp_path, checkpoint_interval=4)
    straight = make_model(dropout=0.1)
    full = train(straight, _data(), config)

    with pytest.raises(KeyboardInterrupt):  # the learner presses stop right after step 4 is saved
        train(make_model(dropout=0.1), _data(), config, callbacks=[_StopAfterCheckpoint()])
    resumed = make_model(dropout=0.1)  # a fresh model: everything comes from the checkpoint
    second = train(resumed, _data(), TrainConfig(**{**config.__dict__, "resume": True}))
    assert second.losses == full.losses and second.tokens == full.tokens
    assert _weights_equal(resumed.state_dict(), straight.state_dict())


class _StopAfterCheckpoint(Callback):
    """The learner presses stop right after a checkpoint is saved."""

    def on_checkpoint(self, state, path):
        raise KeyboardInterrupt


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("step_*.pt"))


def test_a_new_run_in_a_folder_of_another_run_keeps_its_own_checkpoints(tmp_path):
    """Issue 13: a run started (resume=False) where another run left higher steps used to prune its own
    checkpoints at once and then resume the other run. Now each run prunes only its own files."""
    other = _config(max_steps=6, checkpoint_dir=tmp_path, checkpoint_interval=2)
    train(make_model(), _data(), other)
    assert _names(tmp_path) == ["step_0000004.pt", "step_0000006.pt"]
    mine = _config(max_steps=4, lr=5e-3, checkpoint_dir=tmp_path, checkpoint_interval=2)
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), _data(), mine, callbacks=[_StopAfterCheckpoint()])
    assert _names(tmp_path) == ["step_0000002.pt", "step_0000004.pt", "step_0000006.pt"]  # nothing lost
    resumed = train(make_model(), _data(), TrainConfig(**{**mine.__dict__, "resume": True}))
    straight = train(make_model(), _data(), _config(max_steps=4, lr=5e-3))
    assert resumed.losses == straight.losses  # it continued this run, not the other one
    assert load_checkpoint(tmp_path / "step_0000006.pt").config["lr"] == 1e-2  # the other run's newest is intact


def test_restarting_the_same_run_never_prunes_the_checkpoint_just_written(tmp_path):
    """Same config and data, started again with resume=False: the newest checkpoint is the new start's,
    even though the earlier attempt saved higher steps."""
    config = _config(max_steps=6, checkpoint_dir=tmp_path, checkpoint_interval=2)
    first = train(make_model(), _data(), config)
    again = TrainConfig(**{**config.__dict__, "max_steps": 2})  # max_steps is not part of the identity
    train(make_model(), _data(), again)
    assert _names(tmp_path) == ["step_0000002.pt", "step_0000006.pt"]  # kept: the just-written 2, then 6
    assert list_checkpoints(tmp_path, load_checkpoint(tmp_path / "step_0000002.pt").run_id)[-1].name == (
        "step_0000002.pt"
    )
    resumed = train(make_model(), _data(), TrainConfig(**{**config.__dict__, "resume": True}))
    assert resumed.losses == first.losses  # continued from the new start's step 2


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        ({"lr": 5e-3}, r"lr 0\.01 -> 0\.005"),
        ({"seed": 7}, r"seed 1337 -> 7"),
        ("data", r"the training data \(another corpus"),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, change, difference):
    train(make_model(), _data(), _config(max_steps=2, checkpoint_dir=tmp_path))
    data, changes = (_data(seed=2), {}) if change == "data" else (_data(), change)
    for resume in (True, str(tmp_path / "step_0000002.pt")):
        config = _config(max_steps=4, checkpoint_dir=tmp_path, resume=resume, **changes)
        with pytest.raises(CheckpointError, match=rf"step_0000002.pt in {re.escape(str(tmp_path))} belongs to "
                                                  rf"another run \(differs in: {difference}.*new "
                                                  r"TrainConfig.checkpoint_dir.*resume=False"):
            train(make_model(), data, config)
    # the fix the message names works: resume=False starts this run beside the other one
    record = train(make_model(), data, _config(max_steps=4, checkpoint_dir=tmp_path, **changes))
    assert record.steps == 4 and (tmp_path / "step_0000002.pt").exists()


def test_checkpoint_state_dict_round_trips(tmp_path):
    train(make_model(), _data(), _config(max_steps=2, checkpoint_dir=tmp_path))
    saved = load_checkpoint(tmp_path)
    again = Checkpoint()
    again.load_state_dict(saved.state_dict())
    assert again.step == saved.step == 2 and again.run_id == saved.run_id and again.losses == saved.losses
    assert _weights_equal(again.model, saved.model)
    assert set(saved.state_dict()) == {"format", *(f.name for f in dataclasses.fields(Checkpoint))}


def _two_checkpoints(tmp_path) -> Path:
    train(make_model(), _data(), _config(max_steps=4, checkpoint_dir=tmp_path, checkpoint_interval=2))
    return tmp_path


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate_without_checksum(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    path.with_suffix(".sha256").unlink()


@pytest.mark.parametrize(
    ("damage", "message"), [(_flip_a_byte, "corrupted"), (_truncate_without_checksum, "half-written")]
)
def test_broken_checkpoint_gives_clear_error_and_keeps_previous(tmp_path, damage, message):
    ckpt = _two_checkpoints(tmp_path)
    good_bytes = (ckpt / "step_0000002.pt").read_bytes()
    damage(ckpt / "step_0000004.pt")
    with pytest.raises(CheckpointError, match=rf"{message}.*step_0000002\.pt is untouched"):
        train(make_model(), _data(), _config(max_steps=6, checkpoint_dir=ckpt, resume=True))
    assert (ckpt / "step_0000002.pt").read_bytes() == good_bytes
    # the fix the message names works: resume from the previous checkpoint
    record = train(
        make_model(), _data(), _config(max_steps=6, checkpoint_dir=ckpt, resume=str(ckpt / "step_0000002.pt"))
    )
    assert record.steps == 6 and len(record.losses) == 6


def test_crash_while_saving_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    ckpt = _two_checkpoints(tmp_path)
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")  # something is written, then the save fails
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        train(
            make_model(),
            _data(),
            _config(max_steps=6, checkpoint_dir=ckpt, checkpoint_interval=2, resume=True),
        )
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before  # no temp file left, nothing replaced
    assert load_checkpoint(ckpt).step == 4


def test_disk_full_while_checkpointing_names_the_folder(tmp_path, monkeypatch):
    """ENOSPC during the write (simulated at fsync): DiskFullError naming the folder; the old files stay."""
    ckpt = _two_checkpoints(tmp_path)
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFullError, match=rf"disk full while saving into {re.escape(str(ckpt))}"):
        train(make_model(), _data(), _config(max_steps=6, checkpoint_dir=ckpt, checkpoint_interval=2, resume=True))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in ckpt.iterdir()} == before
    assert load_checkpoint(ckpt).step == 4


def test_a_killed_write_leaves_no_temp_file_after_the_next_save(tmp_path):
    """A process SIGKILLed mid-write leaves its hidden temp file; the next checkpoint save removes it."""
    code = (
        "import os, signal, sys, tempfile; from pathlib import Path; from helpers.core import io; "
        "fd, tmp = tempfile.mkstemp(dir=sys.argv[1], prefix=io._tmp_name(Path(sys.argv[1]) / 'step_0000002.pt')); "
        "os.write(fd, b'half a checkpoint'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, timeout=60)
    assert killed.returncode == -9
    (leftover,) = [p.name for p in tmp_path.iterdir()]
    assert leftover.startswith(".tmp-step_0000002.pt.")
    train(make_model(), _data(), _config(max_steps=2, checkpoint_dir=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000002.pt", "step_0000002.sha256"]


def test_resume_from_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="step_0000009.pt does not exist"):
        train(make_model(), _data(), _config(resume=str(tmp_path / "step_0000009.pt")))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt = _two_checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match="does not match this model"):
        train(TinyLM(n_embd=8), _data(), _config(max_steps=6, checkpoint_dir=ckpt, resume=True))


def test_frozen_weights_are_not_checkpointed(tmp_path):
    """LoRA-style runs: only trainable weights go into checkpoints, and resume still works."""

    def frozen_model():
        model = make_model()
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("head")
        return model

    config = _config(max_steps=4, checkpoint_dir=tmp_path, checkpoint_interval=2)
    record = train(frozen_model(), _data(), config)
    saved = load_checkpoint(tmp_path)
    assert saved.model_partial and set(saved.model) == {"head.weight", "head.bias"}
    assert record.trainable_params == VOCAB * 16 + VOCAB
    again = train(frozen_model(), _data(), TrainConfig(**{**config.__dict__, "max_steps": 6, "resume": True}))
    assert again.losses[:4] == record.losses and len(again.losses) == 6


# ----------------------------------------------------------------------------- distributed


@pytest.mark.slow
def test_ddp_two_processes_equal_one_on_the_same_global_batch(tmp_path):
    ddp = _run_worker(str(tmp_path / "ddp.pt"), "--steps", "4", "--batch-size", "4", torchrun=True)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = _run_worker(str(tmp_path / "one.pt"), "--steps", "4", "--batch-size", "8")
    assert single.returncode == 0, single.stderr
    a, b = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "one.pt")
    assert a["tokens"] == b["tokens"] == 4 * 8 * BLOCK
    # Not bit-identical: 2 half-batch gradients are averaged by all-reduce instead of one mean over 8
    # rows, so float sums run in another order; 1e-6 is ~10 float32 ulps at these magnitudes.
    assert a["losses"] == pytest.approx(b["losses"], abs=1e-6)
    for name in a["weights"]:
        torch.testing.assert_close(a["weights"][name], b["weights"][name], rtol=0, atol=1e-6, msg=name)


# ----------------------------------------------------------------------------- bad input


def test_batch_larger_than_data():
    with pytest.raises(ValueError, match="larger than the data"):
        train(
            make_model(), TokenBatches(torch.arange(30) % VOCAB, batch_size=64, block_size=BLOCK), _config()
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: _data(block_size=2 * BLOCK), r"sequences of 32 tokens but the model accepts at most 16"),
        (lambda: TokenBatches(torch.arange(200), 4, BLOCK), r"token id 199 but the model's vocab_size is 32"),
    ],
)
def test_data_that_does_not_fit_the_model_fails_before_training(data, message):
    model = make_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=message):
        train(model, data(), _config())
    assert _weights_equal(model.state_dict(), before)


@pytest.mark.parametrize(
    ("data", "changes", "error", "message"),
    [
        (lambda: [next(_data())], {}, TypeError, "wrap a list of batches"),
        (lambda: iter([next(_data())]), {}, ValueError, "ran out of batches at step 2 of 6"),
        (lambda: iter([next(_data())]), {"checkpoint_dir": "x"}, TypeError, "has no state_dict"),
    ],
)
def test_data_that_is_not_a_resumable_stream(data, changes, error, message):
    with pytest.raises(error, match=message):
        train(make_model(), data(), _config(**changes))


def test_nan_loss_stops_with_the_step_and_a_fix():
    model = make_model()
    calls = {"n": 0}

    def poisoned_loss(m, batch):
        calls["n"] += 1
        loss = default_loss_fn(m, batch)
        return loss * float("nan") if calls["n"] == 3 else loss

    with pytest.raises(TrainingDivergedError, match=r"nan at step 3 of 6.*lower TrainConfig.lr.*fp32"):
        train(model, _data(), _config(), loss_fn=poisoned_loss)


def test_batch_without_any_label_is_refused():
    batch = next(_data())
    batch["labels"][:] = -100
    with pytest.raises(ValueError, match="no label other than -100"):
        train(make_model(), ListBatches([batch]), _config())


# ----------------------------------------------------------------------------- notebook 03 == helpers


@pytest.fixture(scope="module")
def nb03():
    from notebook_defs import load_definitions

    return load_definitions("03_pretraining.ipynb")


def test_notebook_schedule_equals_helpers(nb03):
    config = TrainConfig(max_steps=50, warmup_steps=5, min_lr_ratio=0.1)
    for step in range(50):
        assert nb03.lr_at(step, 50, 5, 0.1) == pytest.approx(lr_factor(step, config), abs=1e-12)


def test_notebook_training_step_equals_the_loop(nb03):
    """The hand-written step of notebook 03, repeated, gives the loop's weights (constant learning rate)."""
    from helpers.scratch.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16))
    by_hand = copy.deepcopy(model)
    config = _config(max_steps=4, warmup_steps=0, min_lr_ratio=1.0, weight_decay=0.1, grad_clip=1.0)
    train(model, _data(), config)
    optimizer = torch.optim.AdamW(
        by_hand.configure_optimizer_groups(0.1), lr=config.lr, betas=config.betas, fused=True
    )
    data = _data()
    for _ in range(config.max_steps):
        nb03.training_step(by_hand, next(data), optimizer, grad_clip=1.0)
    assert _weights_equal(model.state_dict(), by_hand.state_dict())
