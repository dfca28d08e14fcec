"""The Call Stack, the Kernel view, "tasks in this function" and the code lenses agree, on every sample
and on every kernel of the matrix (sysrq-c of each kernel of the run).

All four read one stack service in the dump layer (``dump/stacks/service.py``); this checks it from
outside, through the real adapter and the real language server on the same dump, with the Call Stack
(``stackTrace`` of every thread) as the reference:

* the Kernel view's groups (``vmcore/stackGroups``) are each thread's Call Stack normalised by the
  shared rule (``tests/helpers/stack_normalize``, the rule the tests use against crash's ``bt``);
* ``vmcore/tasksInFunction`` lists exactly the threads with a row of the function in their Call Stack
  (one name per function: ``f.isra.0`` is ``f``), each with the id of its first such row;
* every code lens the language server puts on a source file counts exactly the tasks whose Call Stack
  has a row of that function in that file.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from tests.conftest import REPO_ROOT, get_sample, kernel_sample_keys, sample_id
from tests.e2e._session import normalized_dap_stack, parse_thread_name, stack_of
from tests.helpers.dap_client import DapClient
from tests.helpers.stack_normalize import base_function_name

from vmcore_dap.dump.arch import arm64, x86_64

#: The default kernel's samples, then the crashed samples of every other kernel of this run (make
#: test: sysrq-c of each), as ``(scenario, kernel, variant)``.
SAMPLES = [
    (scenario, None, None) for scenario in ("oops-null", "sysrq-c", "irq-oops", "many-tasks", "no-panic")
] + kernel_sample_keys()


INLINE_SUFFIX = " [inlined]"
USER_MODE, UNWIND_FAILED, NO_STACK = "<user mode>", "<cannot unwind>", "<no stack>"

pytestmark = pytest.mark.timeout(1800)


def _launch_config(sample: Any) -> dict[str, Any]:
    """The sample's launch.json configuration with its kernel source tree (as a user has it)."""
    from samples.kernel_source import debian_version_of_vmlinux, ensure_kernel_source
    from samples.sample_store import launch_configuration

    source = ensure_kernel_source(debian_version_of_vmlinux(Path(sample.vmlinux)))
    config: dict[str, Any] = launch_configuration(sample, source)["configurations"][0]
    return config


def row_function(frame: dict[str, Any]) -> str:
    """The function a Call Stack row is in, by the one name rule (``f.isra.0+0x12`` is ``f``)."""
    name: str = frame["name"]
    return base_function_name(name.removesuffix(INLINE_SUFFIX).split("+0x")[0])


@dataclass
class CallStacks:
    """One adapter session on a sample and every thread's Call Stack."""

    client: DapClient
    states: dict[int, str]
    pids: dict[int, int]
    stacks: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def code_rows(self, thread_id: int) -> Iterator[dict[str, Any]]:
        return (f for f in self.stacks[thread_id] if f.get("presentationHint") != "label")

    def threads_in(self, function: str) -> set[int]:
        return {tid for tid in self.stacks if any(row_function(f) == function for f in self.code_rows(tid))}


_sessions: dict[str, CallStacks] = {}


def call_stacks(scenario: str, log_dir: Path) -> CallStacks:
    """The adapter's Call Stack of every thread of the sample ``scenario`` (an id of :data:`SAMPLES`),
    read once per test module."""
    if scenario not in _sessions:
        client = DapClient(log_dir)
        client.launch_and_stop(_launch_config(get_sample(*_KEYS[scenario])), timeout=300)
        threads = client.call("threads", timeout=120)["threads"]
        parsed = {t["id"]: parse_thread_name(t["name"]) for t in threads}
        session = CallStacks(
            client, {i: p["state"] for i, p in parsed.items()}, {i: p["pid"] for i, p in parsed.items()}
        )
        for thread_id in parsed:
            session.stacks[thread_id] = stack_of(client, thread_id)
        _sessions[scenario] = session
    return _sessions[scenario]


@pytest.fixture(scope="module", autouse=True)
def _close_sessions() -> Iterator[None]:
    yield
    for session in _sessions.values():
        errors = session.client.schema_errors
        session.client.close()
        assert errors == [], errors
    _sessions.clear()


_KEYS = {sample_id(key): key for key in SAMPLES}


@pytest.fixture(scope="module", params=list(_KEYS))
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_kernel_view_groups_are_the_call_stacks_normalised(scenario: str, tmp_path_factory: Any) -> None:
    session = call_stacks(scenario, tmp_path_factory.mktemp(f"agree-{scenario}"))
    body = session.client.call("vmcore/stackGroups", timeout=600)
    group_of = {
        tid: tuple(f["function"] for f in g["frames"]) for g in body["groups"] for tid in g["threadIds"]
    }
    assert set(group_of) == set(session.stacks) and body["taskCount"] == len(session.stacks)
    differ = {}
    # Where crash stops one frame early (arm64), the shared rule ends a stack before the
    # architecture's roots (Arch.stack_roots); x86-64 has none.
    sample = get_sample(*_KEYS[scenario])
    roots = (arm64.ARCH if sample.arch == "arm64" else x86_64.ARCH).stack_roots
    for tid, frames in session.stacks.items():
        functions = [f.function for f in normalized_dap_stack(frames)]
        while functions and functions[-1] in roots:
            functions.pop()
        normalized = tuple(functions)
        if not normalized:
            name = frames[0]["name"]
            normalized = (
                (UNWIND_FAILED,)
                if name.startswith("── cannot unwind")
                else (NO_STACK,)
                if name.startswith("── no kernel stack")
                else (USER_MODE,)
            )
        if normalized != group_of[tid]:
            differ[tid] = (normalized, group_of[tid])
    assert not differ, f"{len(differ)} threads: Call Stack vs Kernel view group: {list(differ.items())[:3]}"


def test_tasks_in_function_are_the_threads_with_it_in_their_call_stack(
    scenario: str, tmp_path_factory: Any
) -> None:
    session = call_stacks(scenario, tmp_path_factory.mktemp(f"agree-{scenario}"))
    functions = sorted({row_function(f) for tid in session.stacks for f in session.code_rows(tid)})
    assert len(functions) > 20
    for function in functions:
        body = session.client.call("vmcore/tasksInFunction", {"function": function}, timeout=600)
        listed = {t["threadId"]: t["frame"]["id"] for t in body["tasks"]}
        assert set(listed) == session.threads_in(function), function
        for tid, frame_id in listed.items():
            first = next(f for f in session.code_rows(tid) if row_function(f) == function)
            assert frame_id == first["id"], (function, tid)
    # Any of a function's names asks for that function: a GCC clone's, a cold part's.
    function = max(functions, key=lambda f: len(session.threads_in(f)))
    plain = session.client.call("vmcore/tasksInFunction", {"function": function})
    for alias in (f"{function}.isra.0", f"{function}.cold"):
        assert session.client.call("vmcore/tasksInFunction", {"function": alias}) == plain, alias


# -- the language server on the same dump ------------------------------------------------------------


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "adapter"), env.get("PYTHONPATH", "")])
    return env


@pytest_lsp.fixture(
    scope="module",
    params=list(_KEYS),
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "vmcore_dap.lsp"], server_env=_server_env()
    ),
)
async def lsp(lsp_client: LanguageClient, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A language server configured with the sample's launch configuration."""
    sample = get_sample(*_KEYS[request.param])
    lsp_client.scenario = request.param  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options=_launch_config(sample)
        )
    )
    yield
    await lsp_client.shutdown_session()


def _title(states: list[str]) -> str:
    """A lens title as ``lsp/features.lens_title`` words it: "3 tasks here (D: 2, S: 1)"."""
    counts = Counter(states)
    order = "DRSTtXZPI"
    parts = ", ".join(f"{s}: {counts[s]}" for s in sorted(counts, key=lambda s: (order.find(s) % 99, s)))
    total = len(states)
    return f"{total} task{'s' if total != 1 else ''} here ({parts})"


@pytest.mark.asyncio(loop_scope="module")
async def test_code_lenses_count_the_tasks_with_the_function_in_that_file(
    lsp: LanguageClient, tmp_path_factory: Any
) -> None:
    scenario: str = lsp.scenario  # type: ignore[attr-defined]
    session = call_stacks(scenario, tmp_path_factory.mktemp(f"agree-lsp-{scenario}"))
    in_file: dict[str, dict[str, set[int]]] = {}  # local file -> function -> threads with a row there
    for tid in session.stacks:
        for frame in session.code_rows(tid):
            source = frame.get("source") or {}
            path = source.get("path")
            if path and not source.get("sourceReference") and Path(path).is_file():
                in_file.setdefault(path, {}).setdefault(row_function(frame), set()).add(tid)
    assert in_file, "no Call Stack row has its source file on this machine"
    lensed = 0
    for path, functions in sorted(in_file.items()):
        uri = Path(path).as_uri()
        lsp.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(
                    uri=uri, language_id="c", version=1, text=Path(path).read_text(errors="replace")
                )
            )
        )
        lenses = await lsp.text_document_code_lens_async(
            types.CodeLensParams(types.TextDocumentIdentifier(uri))
        )
        for lens in lenses or []:
            assert lens.command is not None and lens.command.arguments
            function = lens.command.arguments[0]
            threads = functions.get(function, set())
            assert threads, f"{path}: a lens on {function}, which no Call Stack has in this file"
            assert Counter(lens.data["pids"]) == Counter(session.pids[t] for t in threads), (path, function)
            assert lens.command.title == _title([session.states[t] for t in threads]), (path, function)
            lensed += 1
        lsp.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    assert lensed >= 5, f"only {lensed} lenses over {len(in_file)} files"
