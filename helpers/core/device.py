"""Where the course runs: device choice, precision policy, threads, and a measured hardware card.

- Device: cuda > mps > cpu, overridable with COURSE_DEVICE or an argument.
- Precision: bf16 autocast where the hardware does bf16 natively (Ampere+ GPUs, CPUs with
  AVX512-BF16/AMX); fp16 autocast with a gradient scaler on older CUDA GPUs; fp32 on MPS (its
  autocast support is partial and numerically surprising) and on CPUs without native bf16.
- Speed: *measured* matmul FLOP/s (fp32 and bf16) in a few seconds, used as the peak for MFU.

Left out on purpose: multi-GPU topology and vendor peak tables — the course measures what it can.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import torch

DEVICE_TYPES = ("cuda", "mps", "cpu")


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device, or the one asked for (argument, else $COURSE_DEVICE)."""
    wanted = prefer or os.environ.get("COURSE_DEVICE")
    if wanted:
        kind = str(wanted).split(":")[0].lower()
        if kind not in DEVICE_TYPES:
            raise ValueError(
                f"unknown device {wanted!r}: use one of {', '.join(DEVICE_TYPES)} (or unset COURSE_DEVICE)"
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {wanted!r} asked for, but CUDA is not available here: use 'cpu'")
        index = str(wanted).partition(":")[2]
        if kind == "cuda" and index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"device {wanted!r} asked for, but this machine has {torch.cuda.device_count()} "
                             "CUDA device(s), numbered from 0: use 'cuda' or 'cuda:0'")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {wanted!r} asked for, but Apple MPS is not available here: use 'cpu'")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bf16 instructions (AVX512-BF16 or AMX on x86, BF16 on Arm)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = line
                    break
    except OSError:
        pass
    # Apple silicon M2+ has bf16, but torch's CPU bf16 kernels there are not faster: stay fp32.
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16", "bf16"))


@dataclass(frozen=True)
class PrecisionPolicy:
    """How training runs on a device: autocast dtype (None = plain fp32) and grad scaling."""

    device_type: str
    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool
    reason: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]


def precision_policy(device: torch.device | str | None = None, prefer: str | None = None) -> PrecisionPolicy:
    """The course's dtype policy for `device`; prefer='fp32' forces full precision."""
    dev = torch.device(device) if device is not None else pick_device()
    if prefer not in (None, "fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {prefer!r}: use 'fp32', 'bf16', 'fp16' or None for the default")
    if prefer == "fp32":
        return PrecisionPolicy(dev.type, None, False, "fp32 asked for")
    if dev.type == "cuda":
        if torch.cuda.is_bf16_supported() and prefer != "fp16":
            return PrecisionPolicy("cuda", torch.bfloat16, False, "GPU supports bf16 (Ampere or newer)")
        return PrecisionPolicy("cuda", torch.float16, True, "pre-Ampere GPU: fp16 with a gradient scaler")
    if dev.type == "mps":
        return PrecisionPolicy("mps", None, False, "MPS: fp32 (autocast on MPS is partial)")
    native = cpu_has_native_bf16()
    if prefer == "fp16":  # subtle: say what the CPU *does* have, not only what it lacks
        has = "this CPU has native bf16: use 'bf16' or 'fp32'" if native else "use 'fp32'"
        return PrecisionPolicy("cpu", None, False, f"fp16 training is for CUDA GPUs (no gradient-scaler path on "
                                                   f"CPU); {has}")
    if prefer == "bf16" or (prefer is None and native):
        return PrecisionPolicy("cpu", torch.bfloat16, False, "CPU has native bf16 instructions")
    return PrecisionPolicy("cpu", None, False, "CPU without native bf16: fp32")


def physical_cores() -> int:
    """Physical cores if psutil can tell, else logical CPUs."""
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def configure_threads(n: int | None = None) -> int:
    """Use one torch thread per physical core (hyper-threads slow matmuls down); returns the count."""
    n = n or physical_cores()
    torch.set_num_threads(n)
    return n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_matmul_flops(
    dtype: torch.dtype = torch.float32, n: int = 1024, seconds: float = 1.0, device: torch.device | None = None
) -> float:
    """Sustained FLOP/s of an n x n matmul on `device` (2*n^3 FLOPs each), measured for ~`seconds`."""
    dev = device or pick_device()
    # subtle: a private generator, so measuring never moves the global RNG a training run was seeded with
    g = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, device=dev, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=dev, dtype=dtype, generator=g)
    for _ in range(2):  # warm-up: kernel selection, caches
        a @ b
    _sync(dev)
    count, start = 0, time.perf_counter()
    while True:
        a @ b
        count += 1
        if count % 4 == 0:
            _sync(dev)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return 2 * n**3 * count / elapsed


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True)
            return out.stdout.strip() or platform.processor()
        except OSError:
            pass
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    try:
        import psutil

        return psutil.virtual_memory().total / 2**30
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


@dataclass(frozen=True)
class HardwareCard:
    """What this machine is and how fast it multiplies matrices (measured, not looked up)."""

    device: str
    device_name: str
    cpu: str
    logical_cpus: int
    physical_cores: int
    torch_threads: int
    ram_gib: float
    torch_version: str
    precision: str
    fp32_flops: float
    bf16_flops: float

    @property
    def peak_flops(self) -> float:
        """The best measured matmul rate: the denominator for MFU."""
        return max(self.fp32_flops, self.bf16_flops)

    def peak_for(self, precision: str) -> float:
        return self.bf16_flops if precision in ("bf16", "fp16") else self.fp32_flops

    def as_dict(self) -> dict:
        return asdict(self)

    def rows(self) -> dict[str, object]:
        """The card as notebook 00 shows it, each name once: on a CPU the device row says "cpu" and the CPU row
        names the processor (`device_name` and `cpu` are the same string there); on a GPU the device row names
        the GPU and the CPU row the host's processor."""
        return {
            "device": self.device if self.device == "cpu" else f"{self.device}: {self.device_name}",
            "CPU": self.cpu, "logical CPUs": self.logical_cpus, "physical cores": self.physical_cores,
            "RAM (GiB)": self.ram_gib, "fp32 matmul (GFLOP/s)": round(self.fp32_flops / 1e9, 1),
            "bf16 matmul (GFLOP/s)": round(self.bf16_flops / 1e9, 1), "training precision": self.precision,
        }


def hardware_card(
    device: torch.device | str | None = None, matmul_size: int = 1024, seconds: float = 1.0
) -> HardwareCard:
    """Describe this machine and measure matmul FLOP/s in fp32 and bf16 (~2 x `seconds`)."""
    dev = torch.device(device) if device is not None else pick_device()
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    elif dev.type == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = cpu_name()
    fp32 = measure_matmul_flops(torch.float32, matmul_size, seconds, dev)
    low = torch.float16 if dev.type == "mps" else torch.bfloat16
    bf16 = measure_matmul_flops(low, matmul_size, seconds, dev)
    return HardwareCard(
        device=dev.type,
        device_name=name,
        cpu=cpu_name(),
        logical_cpus=os.cpu_count() or 1,
        physical_cores=physical_cores(),
        torch_threads=torch.get_num_threads(),
        ram_gib=round(ram_gib(), 1),
        torch_version=torch.__version__,
        precision=precision_policy(dev).name,
        fp32_flops=fp32,
        bf16_flops=bf16,
    )
