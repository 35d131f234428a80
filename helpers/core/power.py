"""Energy estimated where it cannot be measured: a power figure chosen for the machine's class, times time.

    estimate_energy("cpu", 60.0, cores=2, cpu_name="Intel(R) Xeon(R) Processor")
    # -> (0.000125, "estimated: 7.5 W = 2 core(s) x 3.75 W per core x 60.0 s; figure: cpu-server = ...")

`helpers.core.energy.EnergyMeter` measures where the platform exposes a counter (RAPL, NVML). Everywhere
else (most VMs, containers, macOS, Windows) the training loop's record still carries energy, from here:

- CPU: the machine's class (server, desktop or laptop, from the CPU's name and whether a battery exists)
  picks a reference chip; its TDP divided by its cores is a share per core, times the cores the run used
  (torch's threads), at most the whole chip. A run on 2 cores of a 96-core server is not charged 360 W.
- GPU: the board power of the GPU named by the driver (T4, A100, H100, H200, RTX 4090), else a stated
  illustrative figure. The GPU board only: the CPU feeding it is not counted (NVML measures the same).

Every figure lives in `POWER_FIGURES` with its source and date; `helpers.measure.assumptions` builds its
devices' power rows from the same table, so a TDP has one home. A TDP is a design figure, not a
measurement: a chip can draw less (idle cores) or more (turbo) than it for a while.

Left out on purpose: DRAM, disks, fans and power-supply losses (neither RAPL nor NVML counts them either),
Apple silicon's real draw (Apple publishes no TDP: counted as a laptop chip), AMD/Intel GPUs.
"""

from __future__ import annotations

import glob
import math
import re
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class PowerFigure:
    """A chip's stated power and, for a CPU, the cores that share it."""

    watts: float
    source: str  # where the watts come from
    date: str  # when the figure was published
    cores: int | None = None  # physical cores of the reference CPU (None for a GPU board)
    cores_source: str = ""

    def per_core(self) -> float:
        return self.watts / self.cores if self.cores else self.watts


POWER_FIGURES: dict[str, PowerFigure] = {
    # CPUs: one reference chip per class. Its share per core = TDP / cores.
    "cpu-laptop": PowerFigure(
        28, "Intel ARK, Core i7-1360P: processor base power 28 W (max turbo 64 W)", "2023-01",
        12, "Intel ARK, Core i7-1360P: 12 cores (4 performance + 8 efficient)"),  # 2.33 W per core
    "cpu-desktop": PowerFigure(
        65, "AMD product page, Ryzen 7 7700: default TDP 65 W", "2023-01",
        8, "AMD product page, Ryzen 7 7700: 8 cores"),  # 8.1 W per core
    "cpu-server": PowerFigure(
        360, "AMD product page, EPYC 9654: default TDP 360 W", "2022-11",
        96, "AMD product page, EPYC 9654: 96 cores"),  # 3.75 W per core
    # GPUs: the board's maximum power, the whole board per run.
    "gpu-t4": PowerFigure(70, "NVIDIA T4 Tensor Core GPU datasheet: max power 70 W", "2019"),
    "gpu-a100": PowerFigure(400, "NVIDIA A100 datasheet: max TDP 400 W (SXM4)", "2021"),
    "gpu-h100": PowerFigure(700, "NVIDIA H100 datasheet: max TDP up to 700 W (SXM)", "2023"),
    "gpu-h200": PowerFigure(700, "NVIDIA H200 datasheet: max TDP up to 700 W (SXM)", "2024"),
    "gpu-rtx4090": PowerFigure(450, "NVIDIA GeForce RTX 4090 specs: total graphics power 450 W", "2022-10"),
    "gpu-other": PowerFigure(
        300, "illustrative: between a T4 (70 W) and an H100 SXM (700 W); a GPU not in this table", "2025"),
}

# Which GPU names map to which row (lower-case substrings, first match wins).
GPU_NAMES = (("h200", "gpu-h200"), ("h100", "gpu-h100"), ("a100", "gpu-a100"), ("t4", "gpu-t4"),
             ("4090", "gpu-rtx4090"))
# Server CPU families (Intel, AMD, AWS, Arm server cores, Ampere).
SERVER_CPU = re.compile(r"xeon|epyc|opteron|graviton|neoverse|altra", re.IGNORECASE)
# Mobile parts: Intel Core / AMD Ryzen model numbers ending in U, P, H, HS or HX (e.g. i7-1360P,
# Ryzen 7 7840U), and Apple silicon (no TDP published; most learners' Macs are laptops).
MOBILE_CPU = re.compile(r"\d{4,5}(?:u|p|h|hs|hx)\b|apple m\d", re.IGNORECASE)


def cpu_class(cpu_name: str | None, has_battery: bool | None) -> tuple[str, str]:
    """The POWER_FIGURES row for a CPU and why:
    cpu_class("Intel(R) Xeon(R) Processor", None) -> ("cpu-server", "a server CPU by name: ...")."""
    name = (cpu_name or "").strip()
    if name and SERVER_CPU.search(name):
        return "cpu-server", f"a server CPU by name: {name}"
    if has_battery:
        return "cpu-laptop", f"a battery is present ({name or 'CPU name unknown'})"
    if name and MOBILE_CPU.search(name):
        return "cpu-laptop", f"a mobile CPU by name: {name}"
    return "cpu-desktop", f"neither a server CPU nor a laptop ({name or 'CPU name unknown'})"


def gpu_class(gpu_name: str | None) -> str:
    """The POWER_FIGURES row for a GPU name: gpu_class("NVIDIA H100 80GB HBM3") -> "gpu-h100"."""
    lower = (gpu_name or "").lower()
    return next((key for part, key in GPU_NAMES if part in lower), "gpu-other")


def this_cpu_name() -> str | None:
    """The CPU's marketing name, or None where it cannot be read (never raises)."""
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.lower().startswith(("model name", "hardware", "cpu model")):
                        return line.split(":", 1)[1].strip()
        elif sys.platform == "darwin":
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5, check=False)
            return done.stdout.strip() or None
        elif sys.platform == "win32":
            import winreg  # only on Windows

            key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
            return str(winreg.QueryValueEx(key, "ProcessorNameString")[0]).strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
    return None


def this_machine_has_battery() -> bool | None:
    """True/False on Linux (/sys/class/power_supply/BAT*); None (unknown) elsewhere."""
    if sys.platform.startswith("linux"):
        return bool(glob.glob("/sys/class/power_supply/BAT*"))
    return None


def estimate_energy(
    device: str,
    seconds: float,
    cores: int = 1,
    cpu_name: str | None = None,
    has_battery: bool | None = None,
    gpu_name: str | None = None,
    processes: int = 1,
) -> tuple[float, str]:
    """(kWh, method) for `seconds` on `device` ("cpu", "mps", "cuda[:i]"), from POWER_FIGURES.

    cores: CPU threads the run used (per process); processes: how many ran (torchrun world size).
    The method names the figure, its row and source, so a reader can check it."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a duration >= 0, got {seconds!r}: pass the run's wall time")
    for name, value in (("cores", cores), ("processes", processes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}: e.g. torch.get_num_threads()")
    kind = str(device).split(":")[0]
    if kind == "cuda":
        key = gpu_class(gpu_name)
        fig = POWER_FIGURES[key]
        watts = fig.watts * processes
        how = f"{watts:,.4g} W" + (f" = {processes} boards x {fig.watts:g} W" if processes > 1 else "")
        how += f" x {seconds:.1f} s; figure: {key} board power ({fig.source}, {fig.date}); GPU "
        how += f"{gpu_name or 'name unknown'}, board only"
    else:
        watts, _, share = cpu_watts(cores * processes, cpu_name, has_battery)
        head, _, tail = share.partition("; figure: ")
        how = f"{head} x {seconds:.1f} s; figure: {tail}"
    return watts * seconds / 3.6e6, f"estimated: {how}"


def cpu_watts(cores: int, cpu_name: str | None, has_battery: bool | None) -> tuple[float, str, str]:
    """(watts, class key, how) of `cores` cores of a CPU: its class's share per core times the cores, at most
    the whole chip. cpu_watts(2, "AMD EPYC 9654", None) -> (7.5, "cpu-server", "7.5 W = 2 core(s) x ...")."""
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"cores must be a whole number >= 1, got {cores!r}: e.g. torch.get_num_threads()")
    key, why = cpu_class(cpu_name, has_battery)
    fig = POWER_FIGURES[key]
    watts = min(fig.watts, fig.per_core() * cores)
    capped = " (capped at the whole chip)" if watts == fig.watts and fig.per_core() * cores > fig.watts else ""
    how = (f"{watts:,.4g} W = {cores} core(s) x {fig.per_core():.3g} W per core{capped}; "
           f"figure: {key} = {fig.watts:g} W / {fig.cores} cores ({fig.source}; {fig.cores_source}; "
           f"{fig.date}); class: {why}")
    return watts, key, how


def energy_of(meter, device: str, seconds: float, cores: int = 1, gpu_name: str | None = None,
              processes: int = 1) -> tuple[float, str]:
    """The run's (kWh, method): what `meter` (a helpers.core.energy.EnergyMeter) measured, else the estimate
    for this machine, with why it was not measured."""
    if meter is not None and getattr(meter, "kwh", None) is not None:
        return meter.kwh, meter.method
    kwh, method = estimate_energy(device, seconds, cores, this_cpu_name(), this_machine_has_battery(),
                                  gpu_name, processes)
    why = getattr(meter, "method", "") or ""
    if why.startswith("unavailable:"):
        method += "; not measured because " + why.removeprefix("unavailable:").strip()
    return kwh, method
