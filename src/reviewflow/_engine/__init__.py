"""The engine: the one step path, and the features that run on it as components."""
