"""crash's data-structure commands where drgn 0.3's differ from crash: ``list`` and ``p var:cpus``.

drgn's ``list``, ``tree``, ``kmem -s``, ``kmem ADDR`` and ``p var:a`` answer as crash does (their
output is compared with crash's in the tests); two differences are mended here, in our namespace:

* ``list task_struct.tasks -s task_struct.pid -h ADDR``: crash takes the offset and the start
  wherever they stand among the options; drgn's parser (argparse) takes only the first run of
  positional words, so it rejects this common spelling. The words are reordered, options first.
* ``p jiffies_64:a``: crash warns "jiffies_64 is not percpu; cpuspec ignored." and prints the value;
  drgn reads the variable at a per-CPU offset it does not have. The same warning, then the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drgn import Program
from drgn.commands import custom_command, parse_shell_command

from vmcore_dap.dump.console.namespace import VMCORE_CRASH_NAMESPACE

__all__ = ["options_first"]

_drgn_list = VMCORE_CRASH_NAMESPACE.drgn_commands["list"]
_drgn_p = VMCORE_CRASH_NAMESPACE.drgn_commands["p"]

#: Options of crash's ``list`` that take a value.
_LIST_VALUED = frozenset({"-o", "-s", "-S", "-l", "-O", "-e"})


def options_first(words: Sequence[str], valued: frozenset[str]) -> list[str]:
    """``words`` with every option (and the value of those in ``valued``) before the positional
    words, each group in its original order; ``|`` and what follows stay at the end."""
    options: list[str] = []
    positional: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and len(word) > 1:
            options.append(word)
            if word in valued and i + 1 < len(words):
                options.append(words[i + 1])
                i += 1
        else:
            positional.append(word)
        i += 1
    return options + positional


@custom_command(
    name="list",
    description="linked list contents (crash's word order)",
    usage="**list** [*options*] [[**-o**] *offset*] *start*",
    long_description="""
    drgn's ``list``; the offset and the start may stand anywhere among the options, as in crash
    (``list task_struct.tasks -s task_struct.pid,comm -h ADDR``).
    """,
    parse=parse_shell_command,
    namespace=VMCORE_CRASH_NAMESPACE,
)
def _crash_cmd_list(prog: Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
    kwargs.pop("parser", None)
    _drgn_list.run(prog, name, options_first(words, _LIST_VALUED), **kwargs)


def _is_percpu(prog: Program, expression: str) -> bool:
    from vmcore_dap.dump.structures.percpu import is_percpu_variable

    variable = expression.split(".", 1)[0].split("[", 1)[0]
    try:
        return is_percpu_variable(prog[variable])
    except (LookupError, ValueError):
        return True  # let drgn say what is wrong with the name


@custom_command(
    name="p",
    description="print the value of an object (crash's rule for a cpuspec on a global)",
    usage="**p** [**-x**|**-d**] *object*[:*cpuspec*]",
    long_description="""
    drgn's ``p``. A cpuspec (``:a``, ``:0,2-3``) on a variable that is not per-CPU is ignored with
    crash's warning, and the value printed.
    """,
    parse=parse_shell_command,
    namespace=VMCORE_CRASH_NAMESPACE,
)
def _crash_cmd_p(prog: Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
    kwargs.pop("parser", None)
    words = list(words)
    for i, word in enumerate(words):
        if word.startswith("-") or ":" not in word:
            continue
        expression = word.partition(":")[0]
        if not _is_percpu(prog, expression):
            print(f"WARNING: {expression} is not percpu; cpuspec ignored.")
            words[i] = expression
        break
    _drgn_p.run(prog, name, words, **kwargs)
