"""The resource meter against known work: CPU burned here and in child processes (waited for,
still alive at the end, already running at the start), memory allocated here and in a child.

Tolerances: CPU figures may exceed the burned amount by the interpreter start-up of each child
and the meter's own sampling (``CPU_SLACK``), never fall short of it; memory peaks must reach
90 % of what was allocated and agree with the kernel's own high-water mark to 1 MiB.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from riskops.cost.meter import ResourceMeter
from tests.helpers import high_water_mark_bytes

CPU_SLACK = 0.35  # seconds: Python start-up per child (~0.05 s here) plus sampling, with margin
MIB = 2**20
BLOCK = 256 * MIB
CLEAR_REFS = Path("/proc/self/clear_refs")

BURN = """
import sys, time
t = time.process_time()
while time.process_time() - t < float(sys.argv[1]):
    pass
"""
# A child that burns, waits for a grandchild that burns, says so, then lives on until told.
PARENT_OF_BURNER = f"""
import subprocess, sys, time
t = time.process_time()
while time.process_time() - t < 0.5:
    pass
subprocess.run([sys.executable, "-c", {BURN!r}, "0.5"], check=True)
print("done", flush=True)
sys.stdin.readline()
"""
# A child that burns before and after a line on stdin.
BURN_READY_BURN = f"""
import sys
exec({BURN!r}.replace("float(sys.argv[1])", "0.7"))
print("ready", flush=True)
sys.stdin.readline()
exec({BURN!r}.replace("float(sys.argv[1])", "0.5"))
"""
HOLD = """
import sys, time
block = b"\\x01" * int(sys.argv[1])
print("ready", flush=True)
time.sleep(0.8)
"""


def _burn(seconds: float) -> None:
    # This thread's own CPU: the process's also counts the meter's sampling thread.
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


def _reaped_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_cpu_burned_in_this_process_is_counted_as_its_own():
    with ResourceMeter(interval=0.05) as meter:
        _burn(1.0)
    usage = meter.usage
    assert usage is not None
    assert 1.0 <= usage.cpu_self_seconds <= 1.0 + CPU_SLACK
    assert usage.cpu_children_seconds < 0.05
    assert usage.cpu_seconds == usage.cpu_self_seconds + usage.cpu_children_seconds
    assert usage.wall_seconds >= 1.0 and usage.samples >= 2


def _descendants() -> int:
    """Processes this one already runs (servers of other tests' fixtures, in a full run)."""
    return len(psutil.Process().children(recursive=True))


def test_a_child_that_was_waited_for_is_counted():
    before = _descendants()
    with ResourceMeter(interval=0.05) as meter:
        subprocess.run([sys.executable, "-c", BURN, "1.0"], check=True)
    usage = meter.usage
    assert usage is not None
    assert 1.0 <= usage.cpu_children_seconds <= 1.0 + CPU_SLACK
    assert usage.cpu_self_seconds < 0.5  # this process only waited
    assert usage.live_descendants == before  # the child was reaped


def test_a_child_alive_at_the_end_is_counted_with_the_grandchild_it_waited_for():
    """The JVM's case: it outlives the block, and its Python workers are its children."""
    reaped_before, before = _reaped_cpu(), _descendants()
    child = subprocess.Popen(
        [sys.executable, "-c", PARENT_OF_BURNER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with ResourceMeter(interval=0.05) as meter:
            assert child.stdout is not None and child.stdout.readline().strip() == "done"
        reaped_during = _reaped_cpu() - reaped_before
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    usage = meter.usage
    assert usage is not None and usage.live_descendants == before + 1
    assert 1.0 <= usage.cpu_children_seconds <= 1.0 + 2 * CPU_SLACK
    # getrusage alone would have missed all of it: the child had not ended.
    assert reaped_during < 0.05


def test_a_child_running_before_the_start_counts_only_its_cpu_inside_the_block():
    child = subprocess.Popen(
        [sys.executable, "-c", BURN_READY_BURN],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    assert child.stdin is not None
    with ResourceMeter(interval=0.05) as meter:
        child.stdin.write("go\n")
        child.stdin.close()
        child.wait(10)
    usage = meter.usage
    assert usage is not None
    # 0.5 s inside the block; the 0.7 s (and the start-up) before it are not this block's
    assert 0.5 <= usage.cpu_children_seconds <= 0.5 + CPU_SLACK


@pytest.mark.skipif(not CLEAR_REFS.exists(), reason="needs Linux /proc/self/clear_refs")
def test_peak_memory_of_this_process_agrees_with_the_kernel_high_water_mark():
    CLEAR_REFS.write_text("5")  # reset VmHWM (and ru_maxrss) to the current RSS
    base = psutil.Process().memory_info().rss
    with ResourceMeter(interval=0.05) as meter:
        block = np.ones(BLOCK // 8)  # written, so resident
        time.sleep(0.5)
        del block
    kernel = high_water_mark_bytes()  # the exact peak of this process during the block
    usage = meter.usage
    assert usage is not None
    assert kernel >= base + 0.99 * BLOCK  # (a few of the base pages may leave meanwhile)
    assert usage.peak_source == "kernel"  # the high-water mark rose inside the block
    assert abs(usage.peak_rss_self_bytes - kernel) <= MIB
    # the sampled figure, used when the kernel's cannot be, agrees within 10 %; it can pass the
    # high-water mark by a little, which the kernel updates from per-thread counters lazily
    assert 0.9 * kernel <= usage.sampled_peak_rss_self_bytes <= kernel + MIB


def test_peak_memory_without_a_new_high_water_mark_is_sampled():
    ballast = np.ones(BLOCK // 8)  # sets a lifetime high-water mark before the block
    del ballast
    base = psutil.Process().memory_info().rss
    with ResourceMeter(interval=0.05) as meter:
        block = np.ones((BLOCK // 2) // 8)
        time.sleep(0.5)
        del block
    usage = meter.usage
    assert usage is not None
    if usage.peak_source == "kernel":  # the allocator kept none of the ballast: still exact
        assert usage.peak_rss_self_bytes >= base + BLOCK // 2
    else:
        assert usage.peak_rss_self_bytes == usage.sampled_peak_rss_self_bytes
        assert usage.peak_rss_self_bytes >= base + 0.9 * (BLOCK // 2)


def test_peak_memory_of_the_tree_includes_a_child():
    with ResourceMeter(interval=0.05) as meter:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(BLOCK)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        child.wait(10)
        child.stdout.close()
    usage = meter.usage
    assert usage is not None
    assert usage.peak_rss_bytes - usage.sampled_peak_rss_self_bytes >= 0.9 * BLOCK
    assert usage.peak_rss_self_bytes < usage.peak_rss_bytes


def test_a_bad_interval_is_refused():
    with pytest.raises(ValueError, match="interval must be positive"):
        ResourceMeter(interval=0)
