"""helpers.core.device.HardwareCard.rows: the hardware card of notebook 00 names each processor once."""

import pytest

from helpers.core import device


@pytest.mark.parametrize("kind, name", [("cpu", "Intel(R) Xeon(R) Processor"), ("cuda", "NVIDIA H200")])
def test_hardware_card_rows_name_each_processor_once(kind, name):
    # on a CPU, hardware_card() stores the CPU's name as device_name too: the rows must not print it twice
    card = device.HardwareCard(device=kind, device_name=name, cpu="Intel(R) Xeon(R) Processor", logical_cpus=2,
                               physical_cores=1, torch_threads=2, ram_gib=23.5, torch_version="2.13.0",
                               precision="bf16", fp32_flops=75.1e9, bf16_flops=330.1e9)
    rows = card.rows()
    shown = [str(v) for v in rows.values()]
    assert sum("Xeon" in v for v in shown) == 1
    assert rows["device"] == ("cpu" if kind == "cpu" else "cuda: NVIDIA H200")
    assert rows["fp32 matmul (GFLOP/s)"] == 75.1 and rows["bf16 matmul (GFLOP/s)"] == 330.1
