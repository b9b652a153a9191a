"""The engine: the one step path, its context, dispatch to the hooks, and the features
that run on it (private; :class:`reviewflow.Campaign` is the public face)."""
