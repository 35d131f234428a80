"""Energy measured where the platform exposes it: RAPL counters on Linux, NVML on NVIDIA GPUs.

    with EnergyMeter("cpu") as meter:
        train(...)
    meter.kwh, meter.method, meter.seconds   # e.g. 0.0021, "measured: RAPL package counters (2 zones)", 61.3

When nothing is exposed (macOS, Windows, most VMs and containers, RAPL files readable only by root)
`meter.kwh` is None and `meter.method` says why ("unavailable: ..."); `helpers.measure.money` then estimates
energy from a stated power figure and labels it "estimated". A meter never raises because a counter
is missing: measuring energy must not break a training run.

What is measured: RAPL = the CPU package(s) (cores + uncore; not DRAM, disks, fans or the power
supply's losses); NVML = the GPU board. Neither is the power drawn at the wall, and both include
whatever else runs on the same chip during the block (on a shared machine, the other users too).

Left out on purpose: AMD GPUs (rocm-smi), Apple `powermetrics` (needs sudo), external power meters.
"""

from __future__ import annotations

import glob
import os
import re
import threading
import time
from dataclasses import dataclass

RAPL_ROOT = "/sys/class/powercap"
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class RaplZone:
    """One top-level RAPL zone (a CPU package): its counter file and the value where it wraps."""

    name: str  # e.g. "package-0"
    energy_file: str
    max_energy_uj: int  # the counter wraps to 0 after this value


def rapl_zones(root: str = RAPL_ROOT) -> list[RaplZone]:
    """Top-level zones `intel-rapl:N` only: sub-zones (`intel-rapl:N:M`, cores/uncore) are already
    part of their package and summing them too would count energy twice. AMD CPUs use the same
    `intel-rapl` names on Linux. Raises FileNotFoundError / PermissionError for the caller to report."""
    dirs = sorted(
        d for d in glob.glob(os.path.join(root, "intel-rapl:*")) if re.search(r"intel-rapl:\d+$", d)
    )
    if not dirs:
        raise FileNotFoundError(f"no {root}/intel-rapl:* zones (not Linux on Intel/AMD, or a VM/container)")
    zones = []
    for d in dirs:
        name_file = os.path.join(d, "name")
        name = _read(name_file) if os.path.exists(name_file) else os.path.basename(d)
        max_uj = int(_read(os.path.join(d, "max_energy_range_uj")))
        zones.append(RaplZone(name, os.path.join(d, "energy_uj"), max_uj))
    return zones


def _read(path: str) -> str:
    with open(path) as f:  # PermissionError on kernels that restrict RAPL to root
        return f.read().strip()


def read_uj(zone: RaplZone) -> int:
    return int(_read(zone.energy_file))


def rapl_delta_uj(start: int, end: int, max_energy_uj: int) -> int:
    """Energy between two readings of one counter, allowing one wrap-around:
    rapl_delta_uj(90, 10, max_energy_uj=99) -> 20  (90 -> 99, wrap to 0, 0 -> 10)."""
    return end - start if end >= start else (max_energy_uj - start) + end + 1


class _RaplSource:
    """Accumulates package energy; polled often enough (see EnergyMeter.poll_s) that a counter can
    wrap at most once between polls (a 262 kJ range wraps every ~45 min at 100 W)."""

    def __init__(self, root: str):
        self.zones = rapl_zones(root)
        self.last = [read_uj(z) for z in self.zones]
        self.total_uj = 0

    def poll(self) -> None:
        now = [read_uj(z) for z in self.zones]
        self.total_uj += sum(
            rapl_delta_uj(a, b, z.max_energy_uj) for a, b, z in zip(self.last, now, self.zones, strict=True)
        )
        self.last = now

    def joules(self) -> float:
        return self.total_uj / 1e6

    def describe(self) -> str:
        return f"measured: RAPL CPU package counters ({len(self.zones)} zone(s); excludes DRAM, GPU, PSU)"


class _NvmlSource:
    """GPU board energy: the total-energy counter (Volta and newer) or, failing that, power samples
    integrated over time (trapezoid rule)."""

    def __init__(self, index: int):
        import pynvml  # optional: only imported when a CUDA device is metered

        self.nvml = pynvml
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.index = index
        try:
            self.start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.counter = True
        except pynvml.NVMLError:
            self.counter = False
            self.samples: list[tuple[float, float]] = []  # (time s, power W)
        self.end_mj = None
        self.poll()

    def poll(self) -> None:
        if self.counter:
            self.end_mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        else:
            watts = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000  # mW -> W
            self.samples.append((time.perf_counter(), watts))

    def joules(self) -> float:
        if self.counter:
            return (self.end_mj - self.start_mj) / 1000
        return integrate_power(self.samples)

    def describe(self) -> str:
        how = "total energy counter" if self.counter else "power sampling"
        return f"measured: NVML {how} (GPU {self.index} board only)"

    def close(self) -> None:
        self.nvml.nvmlShutdown()


def integrate_power(samples: list[tuple[float, float]]) -> float:
    """Joules from (seconds, watts) samples by the trapezoid rule: [(0, 10), (2, 30)] -> 40.0."""
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False))


class EnergyMeter:
    """Context manager measuring the energy used during its block, if this platform can.

    device: "cpu" (RAPL) or "cuda[:i]" (NVML); anything else -> unavailable.
    poll_s: how often a background thread reads the counters (wrap-around safety, power samples).
    rapl_root: where the powercap tree lives (tests point it at a fake tree).
    """

    def __init__(self, device: str = "cpu", poll_s: float = 1.0, rapl_root: str = RAPL_ROOT):
        if isinstance(poll_s, bool) or not isinstance(poll_s, (int, float)) or not 0 < poll_s < float("inf"):
            raise ValueError(f"poll_s must be a number of seconds > 0, got {poll_s!r}: use e.g. 1.0")
        self.device = str(device)
        self.poll_s = poll_s
        self.rapl_root = rapl_root
        self.kwh: float | None = None
        self.method = "unavailable: the meter has not run yet (use it as `with EnergyMeter(...) as m:`)"
        self.seconds = 0.0
        self._source = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open_source(self):
        kind, _, index = self.device.partition(":")
        if kind == "cpu":
            try:
                return _RaplSource(self.rapl_root), None
            except PermissionError:
                return (
                    None,
                    "unavailable: RAPL energy_uj is readable only by root here (run as root or chmod o+r)",
                )
            except (OSError, ValueError) as err:
                return None, f"unavailable: {err}"
        if kind == "cuda":
            try:
                return _NvmlSource(int(index or 0)), None
            except ImportError:
                return None, "unavailable: pynvml is not installed (pip install nvidia-ml-py)"
            except Exception as err:  # NVMLError has many subclasses; any failure means "not measurable"
                return None, f"unavailable: NVML failed ({err})"
        return (
            None,
            f"unavailable: no energy counter for device {self.device!r} (only cpu/RAPL and cuda/NVML)",
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._source.poll()
            except Exception:  # noqa: BLE001  a counter that vanishes mid-run: keep what we have
                return

    def __enter__(self) -> EnergyMeter:
        self._start = time.perf_counter()  # before the first reading, so seconds covers every sample
        self._source, why = self._open_source()
        if why:
            self.method = why
        else:
            self._thread = threading.Thread(target=self._loop, name="EnergyMeter", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._source is None:
            self.seconds = time.perf_counter() - self._start
            return
        self._stop.set()
        self._thread.join()
        try:
            self._source.poll()
            self.kwh = self._source.joules() / JOULES_PER_KWH
            self.method = self._source.describe()
        except Exception as err:  # noqa: BLE001
            self.kwh, self.method = None, f"unavailable: reading the counter failed at the end ({err})"
        finally:
            self.seconds = time.perf_counter() - self._start  # after the last reading: covers every sample
            if hasattr(self._source, "close"):
                self._source.close()

    @property
    def measured(self) -> bool:
        return self.kwh is not None

    def __repr__(self) -> str:
        kwh = "None" if self.kwh is None else f"{self.kwh:.3g}"
        return f"EnergyMeter({self.device!r}, kwh={kwh}, seconds={self.seconds:.3g}, method={self.method!r})"


def probe(device: str = "cpu", rapl_root: str = RAPL_ROOT) -> str:
    """What an EnergyMeter on `device` would use here, measured over a 0-length block."""
    with EnergyMeter(device, rapl_root=rapl_root) as meter:
        pass
    return meter.method
