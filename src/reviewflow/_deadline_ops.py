"""Deadline operations of a campaign: due times, extensions, the sweep and the forecast.

(The deadlines work fills this module; the campaign delegates to it.)
"""

from __future__ import annotations
