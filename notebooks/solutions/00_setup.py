"""Solutions: notebook 00, open exercises (the notebook has no self-checking ones).

Each `open_exercise_N` runs the experiment of exercise N (sizes are arguments, so a test can run it small)
and its docstring gives the answer to expect. tests/test_solutions_open.py checks what is checkable.
"""


def open_exercise_1(sizes=(256, 4096), seconds=1.0):
    """Matmul FLOP/s at a small and a large size -> {n: FLOP/s} (fp32, on the course's device).

    Answer: the small size reports fewer FLOP/s. An n x n matmul does 2n^3 FLOPs on 3n^2 numbers, so its
    work per byte moved grows with n: at n=256 (33 M FLOPs, a few hundred microseconds) the fixed costs of a
    call (dispatch, waking threads, packing the operands) and memory traffic are a large share of the time,
    and the vector units wait. At 4096 the same costs are spread over 137 G FLOPs and the cores stay busy;
    only then does the figure approach the chip's peak. A training step of the tiny GPT multiplies small
    matrices, which is one reason its MFU (notebook 03) is far below 100 %.
    """
    import torch

    from helpers.core.device import measure_matmul_flops, pick_device

    device = pick_device()
    return {n: measure_matmul_flops(torch.float32, n=n, seconds=seconds, device=device) for n in sizes}


def open_exercise_2(peak_flops=None):
    """Estimated minutes per notebook under `ci` and `cpu` on this machine -> DataFrame (one column each).

    Answer: `cpu` is estimated several times longer in all (the stated budgets: 12 vs 39 minutes on 2 cores),
    and almost all of the difference is in the notebooks that train: 03 (pretraining steps), 05 (LoRA
    steps on the 135 M model) and 06 (the route ladders). Notebooks 00-02 barely change: they are overhead
    (imports, loading), not compute. The estimate scales each notebook's FLOPs by the peak notebook 00
    measured here; it assumes this machine reaches the same fraction of its peak as the calibration machine.
    """
    import pandas as pd
    import torch

    from helpers.core.device import measure_matmul_flops
    from helpers.course.budget import estimate_runtimes
    from helpers.course.profiles import get_profile

    peak = peak_flops or measure_matmul_flops(torch.float32, n=512, seconds=0.5)
    return pd.DataFrame({name: estimate_runtimes(get_profile(name), peak)["estimated min"] for name in ("ci", "cpu")})


def open_exercise_3():
    """Inside `offline()`, connect to a listening socket on 127.0.0.1 -> (connected: bool, refused: list).

    Answer: the connection succeeds and the guard lists no attempt: `helpers.core.netguard` refuses only
    non-loopback addresses (`is_loopback`). Loopback never leaves the machine, so it cannot leak data or
    download anything, and Jupyter depends on it: the browser talks to the Jupyter server over
    http://127.0.0.1:8888, and the server talks to each kernel over ZeroMQ sockets on 127.0.0.1 (the ports in
    the kernel's connection file). Blocking loopback would cut the notebook off from its own kernel.
    (The notebook's port 8888 may have no server when run headless; the solution opens its own listener.)
    """
    import socket

    from helpers.core.netguard import offline

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with offline() as guard:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                connected = True
        return connected, list(guard.attempts)
