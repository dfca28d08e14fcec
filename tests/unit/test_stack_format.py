"""How ``stackTrace`` shapes a frame's source: the file when it is on disk, else a listing reference
that still names the DWARF file and line. The e2e tests check the same on real dumps."""

from __future__ import annotations

from pathlib import Path

from vmcore_dap.dump.sources.source_map import SourceMap
from vmcore_dap.dump.stacks.frames import StackFrameInfo
from vmcore_dap.handlers.source import SourceInfo
from vmcore_dap.handlers.stack import ListingLookup, format_frame


def _frame(**fields: object) -> StackFrameInfo:
    base: dict[str, object] = {
        "kind": "code",
        "name": "vfs_write",
        "function": "vfs_write",
        "pc": 0xFFFFFFFF81234567,
        "source_file": "fs/read_write.c",
        "line": 584,
        "column": 9,
    }
    base.update(fields)
    return StackFrameInfo(**base)  # type: ignore[arg-type]


def _listing(calls: list[StackFrameInfo]) -> ListingLookup:
    def listing(info: StackFrameInfo) -> SourceInfo:
        calls.append(info)
        source = {"name": "vfs_write (disassembly)", "sourceReference": 7, "presentationHint": "deemphasize"}
        return SourceInfo(source, 42, 0, info.source_file)

    return listing


def test_file_on_disk_opens_itself(tmp_path: Path) -> None:
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs/read_write.c").write_text("")
    calls: list[StackFrameInfo] = []
    body = format_frame(3, _frame(), SourceMap({}, tmp_path), _listing(calls))
    assert body["source"] == {"name": "read_write.c", "path": str(tmp_path / "fs/read_write.c")}
    assert (body["line"], body["column"]) == (584, 9) and calls == []


def test_missing_file_gets_the_listing_and_keeps_naming_its_line(tmp_path: Path) -> None:
    calls: list[StackFrameInfo] = []
    body = format_frame(3, _frame(), SourceMap({}, tmp_path), _listing(calls))
    source = body["source"]
    assert source["sourceReference"] == 7 and (body["line"], body["column"]) == (42, 1)
    assert source["path"] == str(tmp_path / "fs/read_write.c") and source["name"] == "read_write.c"
    assert source["origin"].startswith("fs/read_write.c:584 is not on this machine")
    assert source["adapterData"] == {"file": "fs/read_write.c", "line": 584, "column": 9}
    assert "presentationHint" not in source  # a listing is not a reason to skip the frame
    assert len(calls) == 1


def test_missing_file_of_a_subtle_frame_stays_deemphasized() -> None:
    body = format_frame(1, _frame(subtle=True), SourceMap(), _listing([]))
    assert body["presentationHint"] == "subtle" and body["source"]["presentationHint"] == "deemphasize"


def test_without_a_listing_the_dwarf_line_stays() -> None:
    body = format_frame(1, _frame(), SourceMap(), lambda info: None)
    assert "sourceReference" not in body["source"] and body["line"] == 584
    assert body["source"]["origin"].startswith("fs/read_write.c:584 is not on this machine")
