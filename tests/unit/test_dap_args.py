"""Typed argument getters: each wrong shape is an error that names the request and the field."""

from __future__ import annotations

import pytest

from vmcore_dap.dap.args import Args
from vmcore_dap.errors import InvalidArguments


def test_getters_return_values_and_defaults() -> None:
    args = Args(
        "stackTrace", {"threadId": 3, "name": "x", "flag": False, "format": {"hex": True}, "l": ["a"]}
    )
    assert args.integer("threadId") == 3
    assert args.integer("levels", 0) == 0
    assert args.opt_integer("startFrame") is None
    assert args.string("name") == "x" and args.opt_string("other") is None
    assert args.boolean("flag", True) is False and args.boolean("absent", True) is True
    assert args.obj("format") == {"hex": True} and args.obj("absent") == {}
    assert args.string_list("l") == ["a"] and args.string_list("absent") == []
    assert Args("x", {"n": None}).integer("n", 7) == 7  # null counts as absent


@pytest.mark.parametrize(
    ("raw", "call", "message"),
    [
        ({}, lambda a: a.integer("threadId"), "stackTrace: missing required argument 'threadId'"),
        ({"threadId": "1"}, lambda a: a.integer("threadId"), "'threadId' must be an integer (got a string)"),
        (
            {"threadId": True},
            lambda a: a.integer("threadId"),
            "'threadId' must be an integer (got a boolean)",
        ),
        ({"threadId": 1.5}, lambda a: a.integer("threadId"), "(got a number with a fraction)"),
        ({"levels": -1}, lambda a: a.integer("levels", 0, minimum=0), "'levels' must be at least 0 (got -1)"),
        ({"s": 1}, lambda a: a.string("s"), "'s' must be a string (got an integer)"),
        ({"b": "true"}, lambda a: a.boolean("b", False), "'b' must be a boolean (got a string)"),
        ({"o": []}, lambda a: a.obj("o"), "'o' must be an object (got an array)"),
        ({"l": ["a", 2]}, lambda a: a.string_list("l"), "'l' must be a list of strings (found an integer)"),
        ({"l": {}}, lambda a: a.string_list("l"), "'l' must be an array (got an object)"),
    ],
)
def test_wrong_types_are_named(raw: dict, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArguments) as info:
        call(Args("stackTrace", raw))
    assert message in info.value.message
    assert info.value.message.startswith("stackTrace: ")
