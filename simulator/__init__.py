"""Pure-JAX simulator of per-question response processes.

A leaf package: it never imports ``ttcdsl``. ``ttcdsl`` lowers a plan to arrays this package
understands, so the simulator can be used and tested on its own.
"""

from simulator.workload import (
    DEFAULT_MIX,
    TIERS,
    Draws,
    Workload,
    draw_samples,
    synthetic_workload,
)

__all__ = ["DEFAULT_MIX", "TIERS", "Draws", "Workload", "draw_samples", "synthetic_workload"]
