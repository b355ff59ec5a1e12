"""Chaos: the whole shop under load and random, seeded faults, then every guarantee checked.

- `run.py`: the run, start to end; `instances.py`: the services' processes under supervision.
- `load.py`: the customers; `faults.py`: what is done to the shop, drawn from the seed.
- `evidence.py`: what is read back; `checks.py`: the invariants; `report.py`: the report.
"""

from pizzashop.chaos.run import ChaosPlan, run_chaos

__all__ = ["ChaosPlan", "run_chaos"]
