"""The limits of a policy file and the settings each of its tables may hold."""

from __future__ import annotations

#: Policy files larger than this are refused before they are parsed.
MAX_FILE_BYTES = 256 * 1024
#: Tables and arrays nested deeper than this are refused.
MAX_DEPTH = 32

TOP_KEYS = (
    "name", "year", "tz", "plugins", "roles", "stages", "permissions", "approval",
    "guidance_groups", "assignments", "content", "scoring", "calendar",
)
STAGE_KEYS = ("due", "hard", "grace", "opens", "ladder")
LEVEL_KEYS = ("name", "label", "roles")
SHARE_KEYS = ("achievement_max_share", "problems_min_share")
COUNT_KEYS = ("min_chars", "max_chars")
SECTION_LIST_KEYS = ("required_sections", "achievement_sections")
FLAG_KEYS = ("require_cause_and_measure", "require_carry_over")
CONTENT_KEYS = SECTION_LIST_KEYS + SHARE_KEYS + COUNT_KEYS + FLAG_KEYS
