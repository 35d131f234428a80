"""helpers.core.energy: the RAPL reader on a fake sysfs tree, NVML on a fake pynvml, and the fallbacks;
helpers.core.power: the estimate's figure chosen by machine class, and a LoRA run's record carrying energy.

Run:  .venv/bin/python -m pytest tests/test_energy.py -q
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import helpers.core.energy as energy
from helpers.core import power
from helpers.core.energy import EnergyMeter, integrate_power, probe, rapl_delta_uj, rapl_zones
from helpers.core.power import POWER_FIGURES, cpu_class, energy_of, estimate_energy, gpu_class

MAX_UJ = 262_143_328_850  # a real max_energy_range_uj value


def make_zone(root: Path, name: str, label: str, uj: int, max_uj: int = MAX_UJ) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d / "energy_uj"


@pytest.fixture
def rapl(tmp_path) -> dict[str, Path]:
    """Two packages plus a sub-zone (cores of package 0) that must not be counted again."""
    return {
        "pkg0": make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000),
        "pkg1": make_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000),
        "core0": make_zone(tmp_path, "intel-rapl:0:0", "core", 7_000_000),
    }


def test_rapl_zones_are_top_level_only(tmp_path, rapl):
    assert [z.name for z in rapl_zones(str(tmp_path))] == ["package-0", "package-1"]


@pytest.mark.parametrize(
    "start,end,max_uj,expected",
    [(10, 30, 99, 20), (90, 10, 99, 20), (99, 0, 99, 1), (0, 0, 99, 0)],
)
def test_rapl_delta_handles_one_wrap(start, end, max_uj, expected):
    assert rapl_delta_uj(start, end, max_uj) == expected


def test_meter_reads_rapl_from_the_tree(tmp_path, rapl):
    with EnergyMeter("cpu", poll_s=3600, rapl_root=str(tmp_path)) as meter:
        rapl["pkg0"].write_text(str(1_000_000 + 2_400_000_000))  # +2400 J
        rapl["pkg1"].write_text(str(5_000_000 + 1_200_000_000))  # +1200 J
        rapl["core0"].write_text(str(7_000_000 + 9_000_000_000))  # ignored: part of package 0
    assert meter.kwh == pytest.approx(3600 / 3.6e6)  # 3600 J = 1 Wh
    assert meter.method.startswith("measured: RAPL") and "2 zone" in meter.method
    assert meter.measured and meter.seconds >= 0


def test_meter_handles_counter_wrap_around(tmp_path):
    counter = make_zone(tmp_path, "intel-rapl:0", "package-0", MAX_UJ - 1_000_000)
    with EnergyMeter("cpu", poll_s=3600, rapl_root=str(tmp_path)) as meter:
        counter.write_text("2_599_999".replace("_", ""))  # wrapped: 1 J before the top + 2.6 J after
    assert meter.kwh * 3.6e6 == pytest.approx(3.6, abs=1e-5)


def test_background_polling_accumulates(tmp_path):
    """With frequent polls, two wraps inside one block are both counted."""
    counter = make_zone(tmp_path, "intel-rapl:0", "package-0", 0, max_uj=999)
    source = energy._RaplSource(str(tmp_path))
    for value in (900, 100, 900, 100):  # 900 + 200 + 800 + 200 uJ
        counter.write_text(str(value))
        source.poll()
    assert source.total_uj == 2100


def test_unreadable_rapl_is_unavailable_not_an_error(tmp_path, rapl, monkeypatch):
    real_read = energy._read

    def deny(path):  # tests run as root, which ignores file modes: simulate the kernel's 0400 files
        if path.endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", path)
        return real_read(path)

    monkeypatch.setattr(energy, "_read", deny)
    with EnergyMeter("cpu", rapl_root=str(tmp_path)) as meter:
        pass
    assert meter.kwh is None and meter.method.startswith("unavailable") and "root" in meter.method


def test_missing_rapl_is_unavailable(tmp_path):
    with EnergyMeter("cpu", rapl_root=str(tmp_path / "nothing")) as meter:
        sum(range(1000))
    assert meter.kwh is None and "no " in meter.method and meter.seconds > 0


def test_this_machine_probe_returns_a_label():
    label = probe("cpu")
    assert label.startswith(("measured:", "unavailable:"))


def test_other_devices_are_unavailable():
    assert probe("mps").startswith("unavailable: no energy counter for device 'mps'")


def test_cuda_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    assert "pynvml is not installed" in probe("cuda")


def fake_pynvml(counter: bool) -> types.ModuleType:
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    state = {"mj": 1_000_000}
    m.NVMLError = NVMLError
    m.state = state
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: f"gpu{i}"

    def total(handle):
        if not counter:
            raise NVMLError("not supported")
        return state["mj"]

    m.nvmlDeviceGetTotalEnergyConsumption = total
    m.nvmlDeviceGetPowerUsage = lambda handle: 250_000  # mW
    return m


def test_nvml_total_energy_counter(monkeypatch):
    fake = fake_pynvml(counter=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with EnergyMeter("cuda:1", poll_s=3600) as meter:
        fake.state["mj"] += 3_600_000  # 3600 J
    assert meter.kwh == pytest.approx(0.001)
    assert "total energy counter" in meter.method and "GPU 1" in meter.method


def test_nvml_power_sampling(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(counter=False))
    with EnergyMeter("cuda", poll_s=0.01) as meter:
        import time

        time.sleep(0.1)
    assert "power sampling" in meter.method
    # constant 250 W: energy = 250 W x (first sample -> last sample) <= 250 W x block time
    assert 0 < meter.kwh * 3.6e6 <= 250 * meter.seconds + 1e-9


def test_integrate_power():
    assert integrate_power([(0, 10), (2, 30)]) == 40.0
    assert integrate_power([(0, 10)]) == 0


def test_bad_poll_interval():
    with pytest.raises(ValueError, match="poll_s"):
        EnergyMeter("cpu", poll_s=0)


# ----------------------------------------------------------------------------- estimates (helpers.core.power)


@pytest.mark.parametrize(("name", "battery", "expected"), [
    ("Intel(R) Xeon(R) Processor", None, "cpu-server"),  # this shared machine's name under its VM
    ("Intel(R) Xeon(R) Platinum 8480+", False, "cpu-server"),
    ("AMD EPYC 9654 96-Core Processor", None, "cpu-server"),
    ("Neoverse-V1", None, "cpu-server"),
    ("13th Gen Intel(R) Core(TM) i7-1360P", None, "cpu-laptop"),
    ("AMD Ryzen 7 7840U w/ Radeon 780M Graphics", None, "cpu-laptop"),
    ("Apple M2", None, "cpu-laptop"),
    ("AMD Ryzen 7 7700 8-Core Processor", False, "cpu-desktop"),
    ("AMD Ryzen 7 7700 8-Core Processor", True, "cpu-laptop"),  # a battery wins over the name
    (None, None, "cpu-desktop"),
])
def test_cpu_class_by_name_and_battery(name, battery, expected):
    key, why = cpu_class(name, battery)
    assert key == expected and why


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA H200", "gpu-h200"), ("NVIDIA H100 80GB HBM3", "gpu-h100"), ("NVIDIA A100-SXM4-40GB", "gpu-a100"),
    ("Tesla T4", "gpu-t4"), ("NVIDIA GeForce RTX 4090", "gpu-rtx4090"), ("NVIDIA L4", "gpu-other"), (None, "gpu-other"),
])
def test_gpu_class_by_name(name, expected):
    assert gpu_class(name) == expected


def test_server_cpu_estimate_is_a_share_per_core_not_the_whole_socket():
    kwh, method = estimate_energy("cpu", 3600.0, cores=2, cpu_name="Intel(R) Xeon(R) Processor")
    assert kwh == pytest.approx(2 * 360 / 96 / 1000)  # 2 cores x 3.75 W for an hour = 7.5 Wh
    assert method.startswith("estimated: 7.5 W = 2 core(s) x 3.75 W per core x 3600.0 s")
    assert "cpu-server" in method and "EPYC 9654" in method and "Xeon" in method


def test_laptop_estimate_is_capped_at_the_whole_chip():
    kwh, method = estimate_energy("cpu", 3600.0, cores=16, cpu_name="Intel(R) Core(TM) i7-1360P")
    assert kwh == pytest.approx(0.028) and "capped at the whole chip" in method


def test_gpu_estimate_is_the_board_power_per_process():
    kwh, method = estimate_energy("cuda:0", 1800.0, cores=8, gpu_name="NVIDIA H100 80GB HBM3", processes=2)
    assert kwh == pytest.approx(2 * 700 * 0.5 / 1000)
    assert "gpu-h100" in method and "NVIDIA H100 datasheet" in method and "board only" in method


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"seconds": -1.0}, "seconds"), ({"seconds": float("nan")}, "seconds"), ({"cores": 0}, "cores"),
    ({"processes": True}, "processes"),
])
def test_estimate_refuses_bad_input(kwargs, match):
    args = {"device": "cpu", "seconds": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        estimate_energy(**args)


def test_energy_of_keeps_a_measurement_and_says_why_it_estimated(monkeypatch):
    class Meter:
        def __init__(self, kwh, method):
            self.kwh, self.method = kwh, method

    assert energy_of(Meter(0.25, "measured: RAPL"), "cpu", 10.0) == (0.25, "measured: RAPL")
    monkeypatch.setattr(power, "this_cpu_name", lambda: "AMD EPYC 9654 96-Core Processor")
    monkeypatch.setattr(power, "this_machine_has_battery", lambda: False)
    kwh, method = energy_of(Meter(None, "unavailable: no RAPL here"), "cpu", 3600.0, cores=4)
    assert kwh == pytest.approx(0.015) and method.endswith("; not measured because no RAPL here")


def test_assumption_rows_take_their_power_from_the_one_table():
    from helpers.measure.assumptions import DEFAULT_ASSUMPTIONS

    for key, device in DEFAULT_ASSUMPTIONS.devices.items():
        figure = POWER_FIGURES[key]
        assert (device.power_w.value, device.power_w.source, device.power_w.date) == (
            figure.watts, figure.source, figure.date)


def test_a_lora_run_record_carries_energy():
    """The loop fills energy for every record: measured where a counter exists, else estimated for this
    machine's class with the figure stated (notebook 05's LoRA record had none before)."""
    from tiny_llama import tiny_llama, tiny_tokenizer

    from helpers.course.profiles import InstructSizes
    from helpers.instruct import lora
    from helpers.instruct.instructions import Example
    from helpers.instruct.models import LoadedModel

    loaded = LoadedModel(tiny_llama(), tiny_tokenizer(), None, "test", 0.0)
    sizes = InstructSizes(max_length=128, batch_size=2, max_steps=2, learning_rate=1e-2, lora_r=4, lora_alpha=8)
    examples = [Example(f"Question {i}?", f"Answer {i}.") for i in range(4)]
    record = lora.tune(loaded, sizes, examples, precision="fp32", device="cpu", peak_flops=1e9).record
    assert record.energy_kwh is not None and record.energy_kwh > 0
    if record.energy_method.startswith("estimated"):
        import torch

        expected, _ = estimate_energy("cpu", record.wall_seconds, torch.get_num_threads(), power.this_cpu_name(),
                                      power.this_machine_has_battery())
        assert record.energy_kwh == pytest.approx(expected)
        assert "figure: cpu-" in record.energy_method and "not measured because" in record.energy_method
    else:
        assert record.energy_method.startswith("measured: RAPL")
