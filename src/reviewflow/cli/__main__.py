"""Run the CLI: ``python -m reviewflow.cli ...``."""

from __future__ import annotations

from reviewflow.cli import main

raise SystemExit(main())
