"""Source files are read only inside the configured roots, over the real adapter on ``oops-null``.

The kernel tree given as ``sourceRoot`` holds ``fs/read_write.c`` as a symbolic link to a file outside
it: the ``vfs_write`` frame must still name that path and its DWARF line, but open as disassembly with
an ``origin`` that says why, and a ``source`` request naming the link (or the file behind it) must be
refused. ``labbug.c``, named absolutely by the module's DWARF next to the ``.ko`` listed in
``debugInfo``, still opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import source_line, stack_of, stopped_session

pytestmark = pytest.mark.timeout(300)


def test_frames_and_source_requests_stay_inside_the_roots(sample_oops: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "read_write.c"
    outside.parent.mkdir()
    outside.write_text("/* not part of the configured tree */\n")
    tree = tmp_path / "linux"
    (tree / "fs").mkdir(parents=True)
    (tree / "fs" / "read_write.c").symlink_to(outside)
    labbug = Path(sample_oops.module_source_dir) / "labbug.c"
    with stopped_session(sample_oops, tmp_path / "log", sourceRoot=str(tree)) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
        vfs = next(f for f in frames if f["name"] == "vfs_write")
        source = vfs["source"]
        assert source["path"] == str(tree / "fs" / "read_write.c")  # still named, with its DWARF line
        assert source["adapterData"]["file"] == "fs/read_write.c" and source["adapterData"]["line"] > 0
        assert source["origin"].startswith(
            f"fs/read_write.c:{source_line(vfs)} is outside the configured source roots, so it is not read"
        )
        assert "'sourceRoot'" in source["origin"]
        listing = client.call("source", {"source": source, "sourceReference": source["sourceReference"]})
        assert (
            "; source file outside the configured source roots, not read: fs/read_write.c"
            in (listing["content"])
        )
        assert "not part of the configured tree" not in listing["content"]
        for path in (str(tree / "fs" / "read_write.c"), str(outside), f"{tree}/../outside/read_write.c"):
            refused = client.request("source", {"source": {"path": path}, "sourceReference": 0})
            assert not refused["success"], path
            assert "outside the configured source roots" in refused["message"], refused["message"]
            assert refused["body"]["error"]["showUser"] is True

        module_frame = next(f for f in frames if f.get("moduleId") == "labbug" and "source" in f)
        assert module_frame["source"]["path"] == str(labbug) and "origin" not in module_frame["source"]
        opened = client.call("source", {"source": {"path": str(labbug)}, "sourceReference": 0})
        assert opened["content"] == labbug.read_text(errors="replace")
