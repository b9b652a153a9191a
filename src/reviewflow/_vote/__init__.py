"""The ballot rules behind reviewflow.ballots, one module per job (tally, tokens, rounds, close, paper)."""
