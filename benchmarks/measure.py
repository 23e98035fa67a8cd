"""Running one benchmark child process and measuring its wall time, CPU time and peak memory.

Peak memory comes from two places:
- the kernel's exact high-water mark of the child (``ru_maxrss`` from ``os.wait4``), which is
  the number the tables show: the resident memory of the Python process doing the work;
- a psutil sampler (every ``interval`` seconds) over the child's process tree and over the
  embedded PostgreSQL server, which pg_ctl starts outside that tree. PostgreSQL backends share
  ``shared_buffers``, so the server's figure counts each process's private memory plus the
  largest shared mapping once, not the plain sum of RSS.
"""

import contextlib
import os
import platform
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

KIB = 1024


@dataclass
class Measurement:
    """What one child process cost."""

    command: list[str]
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    max_rss_bytes: int
    tree_rss_peak_bytes: int
    postgres_peak_bytes: int
    postgres_cpu_seconds: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    # Share of the machine's CPU time the hypervisor gave to other guests while the child ran.
    steal_share: float | None = None
    timed_out: bool = False
    stderr_tail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Peaks:
    tree: int = 0
    postgres: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False
    # Per server process: CPU seconds when first seen and when last seen.
    server_cpu: dict[int, list[float]] = field(default_factory=dict)

    def postgres_cpu(self) -> float:
        """CPU the server spent while the child ran (a process that exits between two samples
        loses its last interval, so this is a slight underestimate)."""
        return sum(last - first for first, last in self.server_cpu.values())


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the server running on ``pgdata`` (a symlink is followed), if one runs."""
    pid_file = Path(os.path.realpath(pgdata)) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:
        return 0


def _server_memory(server: list[psutil.Process]) -> int:
    """Private memory of every server process plus the largest shared mapping, counted once."""
    private, shared = 0, 0
    for proc in server:
        try:
            info = proc.memory_info()
        except psutil.Error:
            continue
        private += max(0, info.rss - info.shared)
        shared = max(shared, info.shared)
    return private + shared


def _sample(pid: int, pgdata: Path | None, peaks: _Peaks, interval: float) -> None:
    while not peaks.stop.is_set():
        server_pid = postmaster_pid(pgdata) if pgdata is not None else None
        server = _tree(server_pid) if server_pid is not None else []
        # A server the child started itself may sit inside its tree; count it once, as server.
        in_server = {p.pid for p in server}
        tree = sum(_rss(p) for p in _tree(pid) if p.pid not in in_server)
        peaks.tree = max(peaks.tree, tree)
        if server:
            peaks.postgres = max(peaks.postgres, _server_memory(server))
            _track_cpu(server, peaks.server_cpu)
        peaks.stop.wait(interval)


def _track_cpu(server: list[psutil.Process], seen: dict[int, list[float]]) -> None:
    initial = not seen
    for proc in server:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total = times.user + times.system
        # A backend born after sampling started counts from zero; older ones from first sight.
        first = seen.get(proc.pid, [total if initial else 0.0])[0]
        seen[proc.pid] = [first, total]


def run_measured(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout_path: Path | None = None,
    pgdata: Path | None = None,
    timeout: float | None = None,
    interval: float = 0.25,
) -> Measurement:
    """Runs ``command`` to completion (or ``timeout``) and measures it.

    Args:
        command: The child process; its stdout goes to ``stdout_path`` when given.
        env: Its environment.
        cwd: Its working directory.
        stdout_path: Where stdout is written (stderr is kept, its tail returned).
        pgdata: The data dir of the embedded server whose memory is sampled beside the child.
        timeout: Seconds after which the child gets SIGTERM (then SIGKILL after 30 s).
        interval: Sampling period of the psutil sampler.
    """
    load_before = os.getloadavg()
    times_before = cpu_times()
    stdout = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    stderr_path = (stdout_path or Path(os.devnull)).with_suffix(".stderr")
    stderr = open(stderr_path, "w") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=stdout, stderr=stderr)
    peaks = _Peaks()
    sampler = threading.Thread(
        target=_sample, args=(child.pid, pgdata, peaks, interval), daemon=True
    )
    sampler.start()
    if timeout is not None:
        killer = threading.Timer(timeout, _terminate, args=(child, peaks))
        killer.daemon = True
        killer.start()
    # wait4 (not Popen.wait) returns the rusage of exactly this child: its own peak RSS.
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if timeout is not None:
        killer.cancel()
    peaks.stop.set()
    sampler.join()
    for handle in (stdout, stderr):
        if handle is not subprocess.DEVNULL:
            handle.close()
    tail = ""
    if stdout_path and stderr_path.exists():
        tail = "\n".join(stderr_path.read_text(errors="replace").splitlines()[-15:])
    return Measurement(
        command=command,
        returncode=child.returncode,
        wall_seconds=round(wall, 3),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        # Linux reports ru_maxrss in KiB.
        max_rss_bytes=usage.ru_maxrss * KIB,
        tree_rss_peak_bytes=max(peaks.tree, usage.ru_maxrss * KIB),
        postgres_peak_bytes=peaks.postgres,
        postgres_cpu_seconds=round(peaks.postgres_cpu(), 2),
        load_before=tuple(round(x, 2) for x in load_before),
        load_after=tuple(round(x, 2) for x in os.getloadavg()),
        steal_share=steal_share(times_before, cpu_times()),
        timed_out=peaks.timed_out,
        stderr_tail=tail,
    )


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) ticks of all CPUs since boot, from /proc/stat; None where there is none.

    Steal is time a virtual CPU was ready to run but the hypervisor ran another guest: on a
    shared host it slows every stage without showing in the load average.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else None


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen between two ``cpu_times`` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def _terminate(child: subprocess.Popen, peaks: _Peaks) -> None:
    """SIGTERM (the CLI stops its embedded server on it), then SIGKILL if it lingers."""
    pid = child.pid
    if child.returncode is not None:  # already reaped: the pid may belong to someone else now
        return
    peaks.timed_out = True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if child.returncode is not None:
            return
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.5)
    if child.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def uptime() -> str:
    """The `uptime` line (load averages over 1, 5 and 15 minutes)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
