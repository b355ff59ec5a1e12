"""Chaos: the whole shop under load and random, seeded faults, then every guarantee checked.

- `run.py`: the run, start to end; `instances.py`: the services' processes under supervision;
  `own_cluster.py`: the run's own cluster and the settings that reach it.
- `load.py`: the customers; `faults.py`: what is done to the shop, drawn from the seed.
- `evidence.py`: what is read back; `checks.py`: the invariants; `report.py`: the report.
- `rebalance.py`: beside the chaos run, what an instance joining or killed costs the orders.
"""

from pizzashop.chaos.run import ChaosPlan, run_chaos

__all__ = ["ChaosPlan", "run_chaos"]
