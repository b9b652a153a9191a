"""The due-time rules behind reviewflow.deadlines, one module per job (anchors, rules,
status, ladder, parse)."""
