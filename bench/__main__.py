"""Run every benchmark section: ``python -m bench [--quick] [--sections ...] [--json PATH]``."""

from __future__ import annotations

from bench.run import main

raise SystemExit(main())
