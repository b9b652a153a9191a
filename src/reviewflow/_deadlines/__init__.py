"""The deadline work of a campaign, one job per module (private; see :mod:`reviewflow._deadline_ops`).

* :mod:`~reviewflow._deadlines.rows`: event names and time keys;
* :mod:`~reviewflow._deadlines.results`: what the operations return;
* :mod:`~reviewflow._deadlines.state`: per-campaign state, due times, index rows, attaching;
* :mod:`~reviewflow._deadlines.sweep`: the sweep and delivery of fired rungs;
* :mod:`~reviewflow._deadlines.explain`: the forecast and the explanation of a due time;
* :mod:`~reviewflow._deadlines.extend`: extensions.
"""
