"""What the audit key costs on the step path: CPU time per transition, with and without.

    python -m bench.mac_cost [--cases 1000] [--rounds 4]

Runs the lifecycle benchmark's reviewflow variant (``bench.rf_lifecycle``: N in-memory
cases through the whole lifecycle) without and with an audit key, alternately, in
this process, and prints the least CPU time (``time.process_time``) per transition of
each and their ratio. CPU time rather than wall time: the machine is shared, and the
figure wanted is what the step path itself costs.
"""

from __future__ import annotations

import argparse
import gc
import time

from bench import rf_lifecycle


def _cpu_per_transition(variant: rf_lifecycle.ReviewflowLifecycle, n: int) -> float:
    variant._check = lambda w, n: None  # type: ignore[method-assign]  # timing only
    gc.collect()
    t0 = time.process_time()
    variant.run(n)
    return (time.process_time() - t0) / (variant.transitions_per_case * n) * 1e6


def main() -> None:
    """Print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    plain, keyed = rf_lifecycle.ReviewflowLifecycle(), rf_lifecycle.ReviewflowMacLifecycle()
    best = {"no key": float("inf"), "audit key": float("inf")}
    for _ in range(args.rounds):
        best["no key"] = min(best["no key"], _cpu_per_transition(plain, args.cases))
        best["audit key"] = min(best["audit key"], _cpu_per_transition(keyed, args.cases))
    for name, us in best.items():
        print(f"{name:<10} {us:7.2f} us CPU per transition ({args.cases} cases, best of "
              f"{args.rounds})")
    print(f"audit key / no key: {best['audit key'] / best['no key']:.3f}")


if __name__ == "__main__":
    main()
