"""Reading and writing policy files, behind :mod:`reviewflow.policy_file`.

- :mod:`.keys`: the limits and the settings a file may hold;
- :mod:`.text`: the file's bytes to TOML data, and TOML's errors as PolicyErrors;
- :mod:`.lines`: where each key of a TOML text is (for error messages);
- :mod:`.values`: small readers and writers of values (durations, kinds, suggestions);
- :mod:`.checks` and :mod:`.read`: the data to a checked :class:`~reviewflow.policy.Policy`;
- :mod:`.toml` and :mod:`.write`: a policy back to TOML and to JSON-safe data. The writer
  reads a policy through the shape it needs and does not import :mod:`reviewflow.policy`,
  so that ``Policy.to_json`` can use it.
"""
