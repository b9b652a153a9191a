"""reviewflow's benchmarks: reviewflow beside its peers and the limit, in one process.

Run everything with ``python -m bench`` (``--quick`` for a smoke run of a few seconds,
``--help`` for the options). Results print as tables and go to JSON with ``--json PATH``;
the latest full run is recorded in ``docs/benchmarks.md``.

Sections (each also runnable alone with ``--sections``):

* ``lifecycle``: N cases through the whole lifecycle, reviewflow beside a plain dict-table
  state machine (the limit), the bare ``transitions`` shared-machine pattern, ``transitions``
  with one machine per case and python-statemachine with one instance per case;
* ``memory``: bytes per in-memory reviewflow case, with and without its event history;
* ``store``, ``sweep``, ``scoring``: durable commands, the deadline sweep, tallying and scoring
  (modules ``bench_store``, ``bench_sweep``, ``bench_scoring``, each exposing
  ``run(quick: bool) -> dict``);
* ``demo``: ``reviewflow demo --branches 1000`` end to end, as a subprocess.
"""
