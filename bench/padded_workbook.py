"""Time the importers on workbooks that declare more than they hold.

    python -m bench.padded_workbook

Builds, in memory, the 1.6 KB workbook of issue #18 (it declares ``A1:XFD1048576`` and
holds one row, at row 1,048,576) and a header at row 1 with one case at row 1,048,576,
then times ``imports.read_cases`` and ``ballots.read_paper_counts`` on each (best of 5,
openpyxl already imported). Before the fix the first took over 10 minutes in
``reviewflow cases import --dry-run``.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from reviewflow import ballots, imports
from reviewflow.exceptions import InputError

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
LAST = 1_048_576


def _row(n: int, *values: str) -> str:
    cells = "".join(f'<c r="{chr(65 + i)}{n}" t="inlineStr"><is><t>{v}</t></is></c>'
                    for i, v in enumerate(values))
    return f'<row r="{n}">{cells}</row>'


def workbook(rows: str) -> bytes:
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
            'package/2006/content-types"><Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
            f'ContentType="{_CT}.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{_CT}.worksheet+xml"/></Types>'),
        "_rels/.rels": (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}">'
                        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" '
                        'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_NS}" '
                            f'xmlns:r="{_REL}"><sheets><sheet name="Sheet1" sheetId="1" '
                            'r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (f'<?xml version="1.0" encoding="UTF-8"?><Relationships '
                                       f'xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/'
                                       'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_NS}">'
                                     '<dimension ref="A1:XFD1048576"/><sheetData>'
                                     f"{rows}</sheetData></worksheet>"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buf.getvalue()


def _best(fn: Callable[[Path], object], path: Path) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        with contextlib.suppress(InputError):  # the shape with no case is refused: timed too
            fn(path)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    import openpyxl  # noqa: F401  # its import is not what is timed

    shapes = {
        "one row at row 1,048,576": _row(LAST, "编号", "党组织", "书记"),
        "header, one case at row 1,048,576": _row(1, "编号", "党组织", "书记")
        + _row(LAST, "s1", "第一中学党支部", "张三"),
    }
    with tempfile.TemporaryDirectory() as folder:
        for shape, rows in shapes.items():
            path = Path(folder) / "padded.xlsx"
            data = workbook(rows)
            path.write_bytes(data)
            cases = _best(imports.read_cases, path)
            counts = _best(ballots.read_paper_counts, path)
            print(f"{shape} ({len(data):,} bytes): read_cases {cases * 1000:.1f} ms, "
                  f"read_paper_counts {counts * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
