"""Train vs Instruct: the shared helper package of the course.

Importing `helpers` (before torch) does two things and nothing else:
- sets OMP_WAIT_POLICY=PASSIVE unless the user set it: with 2 cores and any other busy process,
  PyTorch's default OpenMP spin-waiting makes training 3-5x slower;
- blocks every non-loopback connection when COURSE_BLOCK_NETWORK=1 (the test suite and its
  notebook kernels run this way, which proves the course works offline).

Each module holds one concept; see README.md for the map.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if os.environ.get("COURSE_BLOCK_NETWORK") == "1":
    from helpers.core.netguard import block_network

    block_network()

__version__ = "0.1.0"
