"""All tasks grouped by identical kernel stack: the pile-ups a kernel engineer looks for first.

Two tasks are in one group when their stacks, normalised by :mod:`.normalize` (the rules the
tests use against crash's ``bt``), list the same functions. A group carries its frames (from its
first member: function, pc, module), how many tasks share it, their state letters and the members'
keys (the task numbers of :class:`~.service.StackService`, which are the DAP thread ids). Groups are
sorted by size, biggest first. The stacks come from the stack service, which unwinds one task per
distinct stack (:mod:`.signature`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.stacks.normalize import Frame

__all__ = ["NO_STACK", "StackGroup", "StackGroups", "UNWIND_FAILED", "USER_MODE", "group_by_stack"]

#: The one "function" of the group of tasks whose stack drgn could not unwind.
UNWIND_FAILED = "<cannot unwind>"
#: The one "function" of the group of tasks that were running in user mode (no kernel frames).
USER_MODE = "<user mode>"
#: The one "function" of the group of tasks that have no kernel stack any more (exited: zombies),
#: which crash's ``bt`` shows as ``(no stack)``.
NO_STACK = "<no stack>"


@dataclass
class StackGroup:
    """Tasks whose normalised stacks list the same functions.

    :param frames: innermost first, with the pcs and modules of the first member.
    :param members: the tasks' keys, in the order the tasks were given.
    :param states: ``ps`` state letter -> number of members in that state.
    """

    frames: tuple[Frame, ...]
    members: list[int] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    pids: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of tasks in the group."""
        return len(self.members)

    @property
    def functions(self) -> tuple[str, ...]:
        """The group's key: its functions, innermost first."""
        return tuple(f.function for f in self.frames)

    @property
    def state_letters(self) -> str:
        """The states of the members, most frequent first (``"DS"``)."""
        return "".join(letter for letter, _ in self.states.most_common())


@dataclass
class StackGroups:
    """Every task's group, and what it cost to compute."""

    groups: list[StackGroup]
    task_count: int
    seconds: float
    #: how many tasks drgn actually unwound (the others shared a stack signature).
    unwound: int = 0


def group_by_stack(stacks: Iterable[tuple[int, TaskInfo, tuple[Frame, ...]]]) -> list[StackGroup]:
    """Group ``(key, task, normalised frames)`` by the frames' functions, biggest group first.

    An empty stack is a group of its own: :data:`UNWIND_FAILED`, :data:`USER_MODE` or
    :data:`NO_STACK`, as the frames given for it say.
    """
    by_functions: dict[tuple[str, ...], StackGroup] = {}
    names: dict[int, tuple[str, ...]] = {}  # id(frames) -> their functions: tasks share frame tuples
    for key, info, frames in stacks:
        functions = names.get(id(frames))
        if functions is None:
            functions = names[id(frames)] = tuple(f.function for f in frames)
        group = by_functions.get(functions)
        if group is None:
            group = by_functions[functions] = StackGroup(frames)
        group.members.append(key)
        group.pids.append(info.pid)
        group.states[info.state] += 1
    return sorted(by_functions.values(), key=lambda g: (-g.count, g.functions))
