"""``vmcore-dap triage`` on every sample: reports, signatures, clusters, cache, bad input, Dask.

One run of the real command (a local process pool) over the directories of all five samples and a
flattened copy of sysrq-c made here by makedumpfile. What each report says is checked against the
facts each sample guarantees (``manifest.json``'s ``expected``, derived from the guest and checked
against crash when the sample was built) and against the adapter itself: the Markdown must be what
the adapter's "Copy crash report" gives on the same dump.

Signatures: the kdump-compressed, ELF and flattened files of one crash have one signature; the
NULL dereference from write() (oops-null), the one in a timer interrupt (irq-oops) and SysRq-c have
three different ones; many-tasks crashes by the same SysRq-c trigger as sysrq-c (with 5,000 more
tasks around it), so it must share sysrq-c's signature — the tasks around a crash are not the crash.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from drgn.helpers.linux.pid import for_each_task
from tests.conftest import get_sample
from tests.e2e._session import open_sample_dump, stopped_session
from tests.e2e.test_flattened import flattened  # noqa: F401 - the fixture: sysrq-c, makedumpfile -F
from tests.helpers.dask_cluster import local_cluster
from tests.helpers.task_states import documented_letter, kernel_state_defines, raw_state

from vmcore_dap.dump.opening.elf import file_build_id

pytestmark = pytest.mark.timeout(1200)

ALL_SCENARIOS = ("oops-null", "sysrq-c", "irq-oops", "many-tasks", "no-panic")


@dataclass
class Triage:
    """One run of the command: its output directory, reports by dump path, summary, progress events."""

    output: Path
    reports: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    stdout: str
    returncode: int


def debug_dirs(samples: list[Any]) -> list[Path]:
    """The kernels' debug trees and each sample's module directory (labbug.ko, with DWARF)."""
    dirs = {s.debug_info_dir for s in samples} | {p.parent for s in samples for p in s.debug_info}
    return sorted(dirs)


def run_triage(output: Path, paths: list[Path], dirs: list[Path], *extra: str) -> Triage:
    command = [sys.executable, "-m", "vmcore_dap", "triage", "--output", str(output), "--progress", "json"]
    for directory in dirs:
        command += ["--debug-info-dir", str(directory)]
    command += [*extra, *map(str, paths)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1100)
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert done.returncode in (0, 1), done.stderr
    summary = json.loads((output / "summary.json").read_text())
    return Triage(output, read_reports(output), summary, events, done.stdout, done.returncode)


def read_reports(output: Path) -> dict[str, dict[str, Any]]:
    """The reports a run wrote in ``output``, by dump path."""
    reports = {}
    for path in output.glob("*.json"):
        if path.name != "summary.json":
            report = json.loads(path.read_text())
            reports[report["vmcore"]] = report
    return reports


@pytest.fixture(scope="module")
def samples() -> dict[str, Any]:
    return {scenario: get_sample(scenario) for scenario in ALL_SCENARIOS}


@pytest.fixture(scope="module")
def triaged(samples: dict[str, Any], flattened: Path, tmp_path_factory: pytest.TempPathFactory) -> Triage:  # noqa: F811
    paths = [s.dir for s in samples.values()] + [flattened]
    return run_triage(tmp_path_factory.mktemp("triage"), paths, debug_dirs(list(samples.values())))


def files_of(sample: Any) -> list[str]:
    return sorted({str(sample.vmcore), str(sample.vmcore_elf)})


def test_every_dump_gets_a_report(triaged: Triage, samples: dict[str, Any], flattened: Path) -> None:  # noqa: F811
    expected = {f for s in samples.values() for f in files_of(s)} | {str(flattened)}
    assert set(triaged.reports) == expected
    assert triaged.returncode == 0
    for report in triaged.reports.values():
        assert report["error"] is None, report["error"]
        assert report["schema"] == "vmcore-dap/triage-report" and report["schema_version"] == 1
        assert (triaged.output / report["markdown_file"]).read_text().startswith("## Kernel crash")
    done = [e for e in triaged.events if e["event"] == "dump"]
    assert sorted(e["vmcore"] for e in done) == sorted(expected)
    assert [e["done"] for e in done] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize("scenario", ALL_SCENARIOS)
def test_report_facts(triaged: Triage, samples: dict[str, Any], scenario: str) -> None:
    sample = samples[scenario]
    facts = sample.expected
    for path in files_of(sample):
        report = triaged.reports[path]
        assert report["kernel"]["release"] == sample.kernel_release
        assert file_build_id(Path(report["kernel"]["vmlinux"])) == file_build_id(sample.vmlinux)
        assert report["kernel"]["build_id"] == file_build_id(sample.vmlinux)
        assert report["panic"]["string"] == facts["panic"]
        assert report["panic"]["oops"] == facts["oops_line"]
        if facts["crashed_pid"] is None:
            assert report["crashed_task"] is None
            assert report["signature"]["class"] == "no-panic"
            continue
        crashed = report["crashed_task"]
        assert (crashed["pid"], crashed["comm"], crashed["cpu"]) == (
            facts["crashed_pid"],
            facts["crashed_comm"],
            facts["crashed_cpu"],
        )
        top = crashed["stack"][0]
        assert top["function"] == facts["function"]
        assert top["file"].endswith(facts["file"]) and top["line"] == facts["line"]
        assert report["signature"]["frames"][0] == facts["function"]
        # The label is the exception widget's headline for the same dump (tests/e2e/test_exception.py).
        if "NULL pointer dereference" in facts["oops_line"]:
            assert report["signature"]["class"] == "null-deref"
            assert report["panic"]["class_label"] == "NULL pointer dereference"
            assert report["modules"]["on_crashed_stack"] == ["labbug"]
        else:
            assert report["signature"]["class"] == "sysrq"
            assert report["panic"]["class_label"] == "SysRq crash"
        assert report["task_count"] >= facts["min_tasks"]
        assert report["launch"]["vmcore"] == path and report["launch"]["type"] == "vmcore"


@pytest.mark.parametrize("scenario", ["oops-null", "many-tasks", "no-panic"])
def test_lock_graph_summary(triaged: Triage, samples: dict[str, Any], scenario: str) -> None:
    sample = samples[scenario]
    facts = sample.expected
    # Every task in D at the instant of the dump: the scenario's waiters, and any other that happened
    # to sleep uninterruptibly then (a kworker in wait_for_completion()), read from the dump by the
    # documented state table (no-panic has no crash answers).
    defines = kernel_state_defines(sample)
    prog = open_sample_dump(sample).prog
    in_d = [t for t in for_each_task(prog) if documented_letter(defines, *raw_state(t)) == "D"]
    for path in files_of(sample):
        blocked = triaged.reports[path]["blocked"]
        assert blocked["count"] == len(in_d)
        mutexes = [lock for lock in blocked["locks"] if lock["symbol"] == "labbug_mutex"]
        (lock,) = mutexes
        assert lock["kind"] == "mutex"
        assert sorted(lock["waiters"]) == sorted(facts["d_state_pids"])
        assert lock["owner"]["pid"] == facts["mutex_holder_pid"] and lock["owner"]["blocked"] is False
        others = [pid for lock in blocked["locks"] if lock is not mutexes[0] for pid in lock["waiters"]]
        assert not set(others) & set(facts["d_state_pids"]), blocked["locks"]


def test_dump_quality(triaged: Triage, samples: dict[str, Any]) -> None:
    kdump = triaged.reports[str(samples["oops-null"].vmcore)]["quality"]
    assert kdump["dump_level"] == 31 and kdump["partial"] and not kdump["truncated"]
    assert kdump["excluded_pages"] == ["user", "cache", "free"]
    live = triaged.reports[str(samples["no-panic"].vmcore_elf)]["quality"]
    assert not live["partial"] and live["description"].startswith("complete ELF dump")


def test_signatures_across_forms_and_scenarios(
    triaged: Triage,
    samples: dict[str, Any],
    flattened: Path,  # noqa: F811
) -> None:
    def ids(scenario: str) -> set[str]:
        return {triaged.reports[p]["signature"]["id"] for p in files_of(samples[scenario])}

    for scenario in ALL_SCENARIOS:
        assert len(ids(scenario)) == 1, f"{scenario}: kdump and ELF files differ"
    assert triaged.reports[str(flattened)]["signature"]["id"] in ids("sysrq-c")
    crashes = [ids(s).pop() for s in ("oops-null", "irq-oops", "sysrq-c", "no-panic")]
    assert len(set(crashes)) == 4
    assert ids("many-tasks") == ids("sysrq-c")


def test_summary_clusters(triaged: Triage, samples: dict[str, Any]) -> None:
    clusters = triaged.summary["clusters"]
    assert [c["count"] for c in clusters] == sorted((c["count"] for c in clusters), reverse=True)
    assert sum(c["count"] for c in clusters) == len(triaged.reports) and triaged.summary["failed"] == []
    sysrq = next(c for c in clusters if c["class"] == "sysrq")
    assert sysrq["count"] == 5  # sysrq-c and many-tasks, kdump and ELF, and the flattened copy
    assert sysrq["kernels"] == [samples["sysrq-c"].kernel_release]
    assert sysrq["first_dump_time"] <= sysrq["last_dump_time"]
    assert sysrq["representative"]["vmcore"] in {d["vmcore"] for d in sysrq["dumps"]}
    assert sysrq["representative_stack"][0].startswith("sysrq_handle_crash")
    for cluster in clusters:
        assert cluster["signature"] in triaged.stdout and cluster["title"] in triaged.stdout
        assert f"`{cluster['signature']}`" in (triaged.output / "summary.md").read_text()


@pytest.mark.parametrize("scenario", ["oops-null", "sysrq-c", "irq-oops"])
def test_markdown_is_the_adapters_crash_report(
    triaged: Triage, samples: dict[str, Any], scenario: str, tmp_path: Path
) -> None:
    sample = samples[scenario]
    report = triaged.reports[str(sample.vmcore)]
    with stopped_session(sample, tmp_path) as (client, _stopped):
        markdown = client.call("vmcore/crashReport", timeout=300)["markdown"]
    assert (triaged.output / report["markdown_file"]).read_text() == markdown


def test_a_rerun_reads_only_new_or_changed_dumps(sample_oops: Any, sample_sysrq: Any, tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for sample in (sample_oops, sample_sysrq):
        shutil.copy(sample.vmcore, dumps / f"{sample.scenario}.vmcore")
    dirs = debug_dirs([sample_oops, sample_sysrq])
    first = run_triage(tmp_path / "out", [dumps], dirs)
    assert [e["cached"] for e in first.events if e["event"] == "dump"] == [False, False]
    again = run_triage(tmp_path / "out", [dumps], dirs)
    assert [e["cached"] for e in again.events if e["event"] == "dump"] == [True, True]
    assert again.reports == first.reports
    changed = dumps / "sysrq-c.vmcore"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 1_000_000_000))
    third = run_triage(tmp_path / "out", [dumps], dirs)
    cached = {e["vmcore"]: e["cached"] for e in third.events if e["event"] == "dump"}
    assert cached == {str(dumps / "oops-null.vmcore"): True, str(changed): False}


def test_unreadable_dumps_get_reports_that_say_why(sample_oops: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty").write_bytes(b"")
    truncated = bad / "truncated.vmcore"
    with open(sample_oops.vmcore, "rb") as source:
        truncated.write_bytes(source.read(64 * 1024))
    paths = [bad / "empty", sample_oops.dmesg, bad / "missing", truncated, sample_oops.vmcore]
    result = run_triage(tmp_path / "out", paths, debug_dirs([sample_oops]))
    assert result.returncode == 0
    reports = {Path(k).name: r for k, r in result.reports.items()}
    assert "the file is empty" in reports["empty"]["error"]["message"]
    assert "not a kdump or ELF core file" in reports["dmesg.txt"]["error"]["message"]
    assert "no such file" in reports["missing"]["error"]["message"]
    assert "truncated" in reports["truncated.vmcore"]["error"]["message"]
    assert all(r["error"]["kind"] == "unreadable" for n, r in reports.items() if n != "vmcore")
    assert reports["vmcore"]["error"] is None
    assert result.summary["failed_count"] == 4 and len(result.summary["clusters"]) == 1
    assert "unreadable" in result.stdout


def test_no_vmcore_found(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no dump here")
    result = run_triage(tmp_path / "out", [tmp_path], [])
    assert result.returncode == 1 and result.summary["dump_count"] == 0


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "timings"}


def test_dask_cluster_gives_the_same_reports(
    triaged: Triage, samples: dict[str, Any], tmp_path: Path
) -> None:
    chosen = [samples["oops-null"], samples["sysrq-c"]]
    with local_cluster() as cluster:
        result = run_triage(
            tmp_path / "out",
            [s.dir for s in chosen],
            debug_dirs(list(samples.values())),
            "--scheduler",
            cluster.scheduler_address,
        )
    assert any(e["event"] == "message" and "dashboard" in e["text"] for e in result.events)
    paths = [p for s in chosen for p in files_of(s)]
    assert sorted(result.reports) == sorted(paths)
    for path in paths:
        assert _comparable(result.reports[path]) == _comparable(triaged.reports[path])


def test_same_scenario_on_every_kernel(tmp_path: Path) -> None:
    """The kernel matrix (samples-matrix: the same scenarios on 5.10, 6.1, 6.12, sid 7.x, arm64):
    each scenario has one signature on every kernel, and the scenarios differ from each other."""
    from samples import sample_store

    if not hasattr(sample_store, "matrix_samples"):
        pytest.skip(
            "the kernel matrix is not in samples/sample_store.py yet (samples-matrix: matrix_samples(), "
            "ensure_sample(scenario, kernel=...)); the cross-build proof here meanwhile: kdump, ELF and "
            "flattened files of one crash, and sysrq-c vs many-tasks"
        )
    wanted = ("oops-null", "sysrq-c")
    # One dump per kernel: not the lossy-d31 variant, sid's makedumpfile -d 31 file that lost the
    # task list (its diagnosis is issue 14 item 4), nor arm64's QEMU dump of the same scenario.
    chosen = [
        m
        for m in sample_store.matrix_samples(make_test_only=True)
        if m.scenario in wanted and m.variant is None
    ]
    built = [sample_store.ensure_sample(m.scenario, kernel=m.kernel, variant=m.variant) for m in chosen]
    kernels = {s.kernel for s in built}
    assert len(kernels) > 1, f"the matrix's make-test samples cover one kernel only: {kernels}"
    result = run_triage(tmp_path / "out", [s.vmcore for s in built], debug_dirs(built))
    by_scenario: dict[str, set[str]] = {}
    for sample in built:
        report = result.reports[str(sample.vmcore)]
        assert report["error"] is None, f"{sample.scenario} on {sample.kernel}: {report['error']}"
        by_scenario.setdefault(sample.scenario, set()).add(report["signature"]["id"])
    for scenario, ids in by_scenario.items():
        titles = {
            s.kernel: result.reports[str(s.vmcore)]["signature"]["frames"]
            for s in built
            if s.scenario == scenario
        }
        assert len(ids) == 1, f"{scenario} has {len(ids)} signatures across kernels: {titles}"
    assert len(set.union(*by_scenario.values())) == len(by_scenario)


def _spawned_workers(pid: int) -> list[int]:
    """The worker processes among the children of ``pid`` (multiprocessing's spawn_main)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(child)
    return workers


def _open_files(pid: int) -> set[str]:
    """What the file descriptors of process ``pid`` point to (empty once it has ended)."""
    files: set[str] = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return files
    for fd in descriptors:
        try:
            files.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return files


def _start_triage(samples: list[Any], output: Path, jobs: int) -> tuple[subprocess.Popen[str], list[str]]:
    """``vmcore-dap triage`` on the kdump and ELF files of ``samples``, left running; and those paths."""
    paths = [p for s in samples for p in files_of(s)]
    command = [sys.executable, "-m", "vmcore_dap", "triage", "--output", str(output), "--jobs", str(jobs)]
    for directory in debug_dirs(samples):
        command += ["--debug-info-dir", str(directory)]
    command += ["--progress", "json", *paths]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), paths


def _end_triage(proc: subprocess.Popen[str], output: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Wait for the run (a hang fails the test, after ending the run's processes); return its reports
    by dump path and its progress events."""
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        for worker in _spawned_workers(proc.pid):
            os.kill(worker, signal.SIGKILL)
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"vmcore-dap triage hung for 300 s; its stderr:\n{stderr}")
    assert proc.returncode == 0, stderr
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return read_reports(output), events


def _assert_died(report: dict[str, Any], pid: int, exitcode: int, how: str) -> None:
    """``report`` says its process ``pid`` died with ``exitcode``, in words too (``how``)."""
    error = report["error"]
    assert error["kind"] == "worker-died", error
    assert (error["pid"], error["exitcode"]) == (pid, exitcode), error
    assert f"Process {pid} reading '{report['vmcore']}' died: {how}" in error["message"], error
    assert report["signature"] is None


def test_a_worker_killed_mid_dump_costs_that_dump_only(
    sample_oops: Any, sample_sysrq: Any, sample_many: Any, tmp_path: Path
) -> None:
    """A process that dies while it reads a dump (drgn is C code; a damaged dump could crash it) costs
    that dump only: it gets a ``worker-died`` report, every other dump its normal one. The process
    killed is the one seen with many-tasks's dump open (5,000 tasks: it reads for longest)."""
    proc, paths = _start_triage([sample_oops, sample_sysrq, sample_many], tmp_path / "out", jobs=2)
    target = str(sample_many.vmcore)
    killed = None
    with proc:
        deadline = time.monotonic() + 120
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            for worker in _spawned_workers(proc.pid):
                if os.path.realpath(target) in _open_files(worker):
                    os.kill(worker, signal.SIGKILL)
                    killed = worker
                    break
            time.sleep(0.005)
        reports, events = _end_triage(proc, tmp_path / "out")
    assert killed is not None, f"no worker was seen reading {target}"
    assert sorted(reports) == sorted(paths)
    _assert_died(reports.pop(target), killed, -signal.SIGKILL, "killed by SIGKILL")
    assert {path: report["error"] for path, report in reports.items()} == dict.fromkeys(reports)
    assert sorted(e["vmcore"] for e in events if e["event"] == "dump") == sorted(paths)


def test_workers_killed_at_birth_cost_their_dumps_only(
    sample_oops: Any, sample_sysrq: Any, sample_many: Any, tmp_path: Path
) -> None:
    """Kill each of the first four worker processes the instant it is seen, while its interpreter is
    still starting (a process pool's worker killed then could leave the run hanging for good): the
    run ends, with a ``worker-died`` report for exactly those four dumps and normal ones for the rest."""
    proc, paths = _start_triage([sample_oops, sample_sysrq, sample_many], tmp_path / "out", jobs=2)
    killed: list[int] = []
    with proc:
        deadline = time.monotonic() + 120
        while len(killed) < 4 and proc.poll() is None and time.monotonic() < deadline:
            for worker in _spawned_workers(proc.pid):
                if worker not in killed and len(killed) < 4:
                    os.kill(worker, signal.SIGKILL)
                    killed.append(worker)
            time.sleep(0.001)
        reports, events = _end_triage(proc, tmp_path / "out")
    assert len(killed) == 4, f"only {len(killed)} workers were seen: {killed}"
    assert sorted(reports) == sorted(paths)
    died = {r["error"]["pid"]: r for r in reports.values() if r["error"] is not None}
    assert sorted(died) == sorted(killed), [r["error"] for r in reports.values()]
    for pid, report in died.items():
        _assert_died(report, pid, -signal.SIGKILL, "killed by SIGKILL")
    assert len(reports) - len(died) == len(paths) - 4
    assert sorted(e["vmcore"] for e in events if e["event"] == "dump") == sorted(paths)


def test_a_worker_that_exits_on_its_own_costs_its_dump_only(
    sample_oops: Any, sample_sysrq: Any, tmp_path: Path
) -> None:
    """A worker that ends by itself before sending its report: here the first one's address space is
    limited (``ulimit -v``, set on it as it starts, before it loads drgn) below what drgn's library
    maps, so its import fails and the interpreter exits with status 1. Its dump gets a report that
    says so; the next dumps, in new processes, are read as usual."""
    limit = 64 * 1024 * 1024
    proc, paths = _start_triage([sample_oops, sample_sysrq], tmp_path / "out", jobs=1)
    limited = None
    with proc:
        deadline = time.monotonic() + 120
        while limited is None and proc.poll() is None and time.monotonic() < deadline:
            for worker in _spawned_workers(proc.pid):
                os.kill(worker, signal.SIGSTOP)  # hold it still while its limit is set and checked
                status = Path(f"/proc/{worker}/status").read_text()
                peak = int(status.split("VmPeak:")[1].split()[0]) * 1024
                resource.prlimit(worker, resource.RLIMIT_AS, (limit, limit))
                os.kill(worker, signal.SIGCONT)
                assert peak < limit, f"worker {worker} had mapped {peak} bytes already: drgn was loaded"
                limited = worker
                break
            time.sleep(0.001)
        reports, events = _end_triage(proc, tmp_path / "out")
    assert limited is not None, "no worker was seen"
    assert sorted(reports) == sorted(paths)
    (died,) = [r for r in reports.values() if r["error"] is not None]
    _assert_died(died, limited, 1, "it exited with status 1 before sending its report")
    assert sorted(e["vmcore"] for e in events if e["event"] == "dump") == sorted(paths)
