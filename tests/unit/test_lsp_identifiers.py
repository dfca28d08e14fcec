"""The identifier under the cursor and what the line says it is (``vmcore_dap.lsp.identifiers``)."""

from __future__ import annotations

from vmcore_dap.lsp.identifiers import identifier_at


def _at(line: str, word: str, occurrence: int = 0) -> tuple[str, str | None]:
    start = -1
    for _ in range(occurrence + 1):
        start = line.index(word, start + 1)
    found = identifier_at([line], 0, start + 1)
    assert found is not None
    return found.name, found.tag_keyword


def test_a_name_after_struct_union_or_enum_is_a_tag() -> None:
    assert _at("struct mutex {", "mutex") == ("mutex", "struct")
    assert _at("static union thread_union u;", "thread_union") == ("thread_union", "union")
    assert _at("enum pid_type type;", "pid_type") == ("pid_type", "enum")
    assert _at("struct mutex *lock;", "lock") == ("lock", None)


def test_the_lock_types_of_7x_are_struct_tags() -> None:
    # include/linux/mutex_types.h of 7.2: "context_lock_struct(mutex) {" defines struct mutex.
    assert _at("context_lock_struct(mutex) {", "mutex") == ("mutex", "struct")
    assert _at("context_lock_struct( raw_spinlock ) {", "raw_spinlock") == ("raw_spinlock", "struct")
    assert _at("context_lock_struct(mutex) {", "context_lock_struct") == ("context_lock_struct", None)
    assert _at("other_macro(mutex) {", "mutex") == ("mutex", None)
