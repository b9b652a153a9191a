"""Read the files users hand to reviewflow, and write the files reviewflow hands back.

Reading: regular files only, never more than a limit.

Every reader of a user-supplied path (policy files, case imports, paper-ballot counts,
the CLI's ``--data-file`` and campaign file) goes through :func:`read_capped`; every
CSV and XLSX table goes through :func:`csv_rows` or :func:`xlsx_rows`. Whatever goes
wrong below them (a device or FIFO behind the path, a damaged zip, a workbook openpyxl
cannot parse, a CSV the parser refuses) comes out as one
:class:`~reviewflow.exceptions.InputError` naming the file and what to do.

Writing: every file reviewflow writes (results, exports, token sheets, notices,
diagrams, campaign files) goes through :func:`write_file` or :func:`file_writer`:
a temporary file with a random name in the target's directory, created exclusively
and never through a symbolic link, written whole, flushed to disk, then renamed over
the target (which replaces a link planted at the target, never the file it points to).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import stat
import warnings
import zipfile
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from reviewflow.exceptions import InputError, ReviewflowError

__all__ = ["MAX_SHEET_CELLS", "MAX_SHEET_ROWS", "MAX_UNPACKED_BYTES", "csv_rows", "decode_utf8",
           "file_writer", "read_capped", "size_text", "write_file", "xlsx_rows", "xlsx_sheet_rows"]

#: A workbook whose parts would unpack to more than this is refused (a zip bomb).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
#: A sheet with more rows than this (data or formatting only) is refused; above every
#: importer's own row limit, so that theirs is the one a real file meets.
MAX_SHEET_ROWS = 250_000
#: A sheet with more cells than this (each row counted as wide as its last value, plus the
#: cells read) is refused: 200,000 rows of 10 columns fit.
MAX_SHEET_CELLS = 5_000_000

#: Opened without blocking: a FIFO behind the path must not wait for a writer.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))

_XLSX_ADVICE = ("open it in Excel or WPS and save it again as an Excel workbook (.xlsx), "
                "or save it as CSV UTF-8")
_CSV_ADVICE = "open it in Excel or WPS and save it again as CSV UTF-8"


def size_text(n: int) -> str:
    """Return a byte count as people write it: ``20 MB``, ``256 KiB``, ``900 bytes``.

    >>> size_text(20 * 1024 * 1024), size_text(256 * 1024), size_text(900)
    ('20 MB', '256 KiB', '900 bytes')
    """
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


def _detail(exc: BaseException) -> str:
    text = str(exc)[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_capped(
    path: str | os.PathLike[str],
    limit: int,
    what: str,
    *,
    too_large: str = "check that this is the right file",
    fail: Callable[[str], ReviewflowError] | None = None,
) -> bytes:
    """Return the bytes of the regular file at ``path``, refusing it past ``limit`` bytes.

    A directory, device, FIFO or socket is refused without reading it (the file is
    opened without blocking and checked again once open, so a path swapped for a FIFO
    in between changes nothing); at most ``limit + 1`` bytes are ever read. ``what``
    names the kind of file expected (``"a case file (.csv or .xlsx)"``) and ``too_large``
    says what to do with a file over the limit. Every refusal is an :class:`InputError`
    starting with the path, or what ``fail`` makes of the message.
    """
    name = os.fspath(path)

    def refuse(message: str) -> ReviewflowError:
        return fail(message) if fail is not None else InputError(f"{name}: {message}")

    def too_big() -> ReviewflowError:
        return refuse(f"the file is larger than {size_text(limit)}, the limit for {what}; "
                      f"{too_large}")

    def check(info: os.stat_result) -> None:
        if stat.S_ISDIR(info.st_mode):
            raise refuse(f"is a directory; give the path of {what}")
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"is not a regular file (a device, FIFO or socket); give the path "
                         f"of {what}")
        if info.st_size > limit:
            raise too_big()

    try:
        check(os.stat(name))  # refuse a device before even opening it
        fd = os.open(name, _OPEN_FLAGS)
    except FileNotFoundError:
        raise refuse("cannot read the file: no such file; check the path (relative paths "
                     "start from the current directory)") from None
    except OSError as exc:
        raise refuse(f"cannot open the file: {exc.strerror or exc}") from None
    try:
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            info = os.fstat(fh.fileno())
            check(info)
            # Read in steps the size of the file, never a buffer of the whole limit at once,
            # and never more than limit + 1 bytes (a file may grow while it is read).
            want, got, parts = limit + 1, 0, []
            step = max(info.st_size + 1, 64 * 1024)
            while got < want:
                chunk = fh.read(min(step, want - got))
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
            data = b"".join(parts)
    except OSError as exc:
        raise refuse(f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # a file that grew, or one whose size the system does not know
        raise too_big()
    return data


def decode_utf8(data: bytes, name: str, what: str = "the file") -> str:
    """Return ``data`` decoded as UTF-8 (a byte-order mark is dropped); InputError if it is not.

    The message gives the byte offset, and says so when the bytes look like GBK/GB 18030
    (what Excel writes for "CSV" on a Chinese Windows).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = ""
        try:
            data.decode("gb18030")
            hint = " (it looks like GBK/GB18030: in Excel, save as \"CSV UTF-8\")"
        except UnicodeDecodeError:
            pass
        raise InputError(f"{name}: {what} is not UTF-8 text (byte {exc.start}){hint}; save it "
                         "as UTF-8 and try again") from None


def csv_rows(data: bytes, name: str, *, delimiters: Sequence[str] = (",",),
             strict: bool = False) -> Iterator[list[str]]:
    """Yield the rows of a UTF-8 CSV file, as lists of strings.

    The delimiter is whichever of ``delimiters`` the first line holds most of. Any
    error of the CSV layer is an :class:`InputError` naming the file and the row.
    """
    text = decode_utf8(data, name)
    first = text.split("\n", 1)[0]
    delimiter = max(delimiters, key=first.count) if first else delimiters[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    try:
        yield from reader
    except Exception as exc:  # csv.Error, and anything else the parser may raise
        detail = str(exc)[:200] if isinstance(exc, csv.Error) else _detail(exc)
        raise InputError(f"{name}, row {reader.line_num}: not a readable CSV file (not valid "
                         f"CSV: {detail}); check the quotes on that row, or {_CSV_ADVICE}") from None


def xlsx_rows(data: bytes, name: str) -> Generator[list[Any], None, None]:
    """Yield the rows that hold data in a workbook's first sheet, as lists of cell values
    (cached results, never formulas); see :func:`xlsx_sheet_rows` for the limits."""
    with contextlib.closing(xlsx_sheet_rows(data, name)) as rows:
        for _number, values in rows:
            yield values


def xlsx_sheet_rows(
    data: bytes, name: str, *, max_rows: int = MAX_SHEET_ROWS, max_cells: int = MAX_SHEET_CELLS,
) -> Generator[tuple[int, list[Any]], None, None]:
    """Yield ``(row number, cell values)`` for each row of a workbook's first sheet that
    holds data (cached results, never formulas), each row as wide as its last value.

    The sheet is read by what it holds, never by the size it declares: a workbook that
    says ``A1:XFD1048576`` and holds one row costs one row. Rows without a value (empty,
    or formatting only) are skipped; the row numbers are the sheet's. Reading stops at
    the end of the sheet's data. A sheet with more than ``max_rows`` rows (counting those
    with formatting only) or ``max_cells`` cells is refused with an
    :class:`~reviewflow.exceptions.InputError` (``reason`` ``sheet_too_large``) naming
    the file and the row reached.

    A workbook that would unpack to more than :data:`MAX_UNPACKED_BYTES` is refused before
    anything is unpacked. Any error of the zip or openpyxl layer (a damaged or truncated
    file, a zip version Python cannot read, XML openpyxl refuses) is an
    :class:`InputError` saying the file is not a readable XLSX workbook and what to do.
    The caller stops reading when it has enough rows; the workbook is closed then.
    """

    def unreadable(exc: BaseException) -> InputError:
        return InputError(f"{name}: not a readable XLSX workbook ({_detail(exc)}); {_XLSX_ADVICE}")

    def too_large(what: str, number: int) -> InputError:
        return _coded_error("sheet_too_large", f"{name}: the first sheet holds more than {what} "
                                               f"(reached at row {number}); delete the empty or "
                                               "formatted rows and columns around the data "
                                               "(or copy the data to a new workbook), or split "
                                               "the file")

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except Exception as exc:  # BadZipFile, NotImplementedError (zip version), OSError...
        raise unreadable(exc) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise InputError(f"{name}: the workbook unpacks to {unpacked // (1024 * 1024)} MB, over "
                         f"the {MAX_UNPACKED_BYTES // (1024 * 1024)} MB limit; split it")
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # styles and extensions openpyxl does not know
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl, zipfile, zlib and XML parsers raise many kinds
        raise unreadable(exc) from None
    try:
        if not wb.worksheets:
            raise InputError(f"{name}: the workbook has no worksheet; {_XLSX_ADVICE}")
        elements = 3 * max_cells + 2 * max_rows + 100_000
        try:
            src, events = _sheet_rows(wb, elements, too_large)
        except Exception as exc:
            raise unreadable(exc) from None
        try:
            rows_read = cells_read = 0
            while True:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        number, cells = next(events)
                except StopIteration:
                    return
                except ReviewflowError:
                    raise
                except Exception as exc:  # zlib.error, EOFError, ValueError... from a damaged part
                    raise unreadable(exc) from None
                rows_read += 1
                if rows_read > max_rows:
                    raise too_large(f"{max_rows:,} rows", number)
                cells_read += len(cells)
                values = [(c["column"], c["value"]) for c in cells if c["value"] is not None]
                if not values:
                    continue
                width = max(column for column, _v in values)
                cells_read += width
                if cells_read > max_cells:
                    raise too_large(f"{max_cells:,} cells", number)
                row: list[Any] = [None] * width
                for column, value in values:
                    row[column - 1] = value
                yield number, row
        finally:
            src.close()
    finally:
        wb.close()


def _sheet_rows(
    wb: Any, max_elements: int, too_large: Callable[[str, int], InputError],
) -> tuple[IO[bytes], Iterator[tuple[int, list[dict[str, Any]]]]]:
    """Open the first sheet's XML; return it (for the caller to close) and the rows that
    openpyxl's cell parser reads from it, up to the end of the sheet's data (what follows,
    merged cells and the like, is never parsed). No more than ``max_elements`` XML
    elements are read, and only the current row's are kept."""
    from openpyxl.worksheet._reader import DATA_TAG, ROW_TAG, WorkSheetParser
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse

    cell_parts = {f"{{{SHEET_MAIN_NS}}}{t}" for t in ("c", "v", "f", "is", "t", "r", "rPr")}
    ws = wb.worksheets[0]
    src: IO[bytes] = wb._archive.open(ws._worksheet_path)
    parser = WorkSheetParser(src, ws._shared_strings, data_only=True, epoch=wb.epoch,
                             date_formats=wb._date_formats, timedelta_formats=wb._timedelta_formats)

    def rows() -> Iterator[tuple[int, list[dict[str, Any]]]]:
        for seen, (_event, element) in enumerate(iterparse(src), 1):
            if seen > max_elements:
                raise too_large(f"{max_elements:,} XML elements", parser.row_counter)
            tag = element.tag
            if tag == ROW_TAG:
                yield parser.parse_row(element)
                element.clear()
            elif tag == DATA_TAG:
                return
            elif tag not in cell_parts:
                element.clear()  # outside a row nothing is kept; a row keeps its cells

    return src, rows()


# ---------------------------------------------------------------------- writing

#: A temporary file is created here and now (never one that exists), never through a link.
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _coded_error(reason: str, message: str) -> InputError:
    return InputError(message, reason=reason)  # the code the CLI and callers read


def _oserror_text(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _create_temp(directory: Path, name: str, mode: int) -> tuple[int, Path]:
    for _ in range(16):  # a name taken (or planted) is skipped, never opened
        tmp = directory / f".{name[:80]}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, _CREATE_FLAGS, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


def _put_in_place(tmp: Path, target: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, target)  # replaces a link at the target, never what it points to
        return
    try:
        os.link(tmp, target, follow_symlinks=False)  # fails if anything (a link too) is there
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.rename(tmp, target)
        return
    os.unlink(tmp)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a platform that cannot open a directory (Windows): the rename stands
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_writer(
    path: str | os.PathLike[str], *, private: bool = False, replace: bool = True,
) -> Iterator[IO[bytes]]:
    """Write a whole file at ``path`` through a binary file object, or leave it as it was.

    The bytes go to a new temporary file with a random name in the target's directory,
    created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``: a file or link planted under
    that name is never opened). When the ``with`` block ends, the file is flushed to
    disk (``fsync``) and renamed over ``path``; a symbolic link at ``path`` is replaced
    by the new file and what it pointed to is left untouched. If the block raises,
    the temporary file is removed and ``path`` is unchanged.

    ``private`` creates the file readable by its owner only (mode 0600, for token
    sheets); otherwise the usual mode (0666 less the umask). ``replace=False`` refuses
    to put the file in place when anything, a link included, is at ``path`` already
    (checked atomically where the file system has hard links).

    A failure of the file system is an :class:`~reviewflow.exceptions.InputError`
    naming the path, with ``reason`` ``exists`` (only with ``replace=False``),
    ``no_directory`` or ``cannot_write``; nothing is left behind.
    """
    target = Path(path)
    shown = os.fspath(path)
    if target.name in ("", ".", ".."):
        raise _coded_error("cannot_write", f"{shown}: give the path of a file, not a directory")
    directory = target.parent
    if not directory.is_dir():
        raise _coded_error("no_directory", f"{shown}: the directory {os.fspath(directory)} does "
                                           "not exist; create it or choose another path")
    try:
        fd, tmp = _create_temp(directory, target.name, 0o600 if private else 0o666)
    except OSError as exc:
        raise _coded_error("cannot_write", f"{shown}: cannot create a file in "
                                           f"{os.fspath(directory)} ({_oserror_text(exc)}); "
                                           "nothing was written") from None
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            _put_in_place(tmp, target, replace)
        except FileExistsError:
            raise _coded_error("exists", f"{shown} exists already; it is never overwritten, "
                                         "choose another path") from None
        except IsADirectoryError:
            raise _coded_error("cannot_write", f"{shown} is a directory; give the path of a "
                                               "file") from None
        except OSError as exc:
            raise _coded_error("cannot_write", f"{shown}: cannot write the file "
                                               f"({_oserror_text(exc)}); nothing was written, "
                                               "check the disk and the permissions") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


def write_file(
    path: str | os.PathLike[str], data: str | bytes, *, private: bool = False,
    replace: bool = True,
) -> Path:
    """Write ``data`` (text as UTF-8, line ends kept as given) as the whole file at ``path``.

    See :func:`file_writer` for how (exclusive temporary file, no link followed,
    ``fsync``, rename) and for ``private`` and ``replace``. Returns the path.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_file(folder / "a.txt", "一中\\r\\n").read_bytes().decode()
    '一中\\r\\n'
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt']
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with file_writer(path, private=private, replace=replace) as fh:
        fh.write(raw)
    return Path(path)
