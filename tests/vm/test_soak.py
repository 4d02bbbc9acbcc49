"""The soak's reading of a hang capture and its summary; boots no VM."""
import soak

# The shape of a vm-hangdump capture as the harness logs it (a boot's
# seconds, then the guest's line): one thread asleep, one in reclaim, a
# request in flight, and a blocked kernel task.
CAPTURE = """\
   44.7 hangdump: begin (asked) at 44.09 s, nbdkit pid 142, 2 threads
   44.7 hangdump: thread 147 (nbdkit) state S wchan futex_wait_queue syscall 202 0x55
   44.7 hangdump:   [<0>] futex_wait_queue+0x60/0x90
   44.7 hangdump:   [<0>] __x64_sys_futex+0x8e/0x1d0
   44.8 hangdump: thread 199 (nbdkit) state R wchan 0 syscall running
   44.8 hangdump:   [<0>] shrink_lruvec+0x5e9/0x10c0
   44.8 hangdump:   [<0>] __alloc_pages_slowpath.constprop.0+0x338/0xe70
   44.8 hangdump:   [<0>] __alloc_pages+0x305/0x330
   44.8 hangdump:   [<0>] alloc_skb_with_frags+0x18c/0x200
   44.8 hangdump:   [<0>] unix_stream_sendmsg+0x1c5/0x5c0
   44.8 hangdump:   [<0>] __x64_sys_sendto+0x20/0x30
   44.8 hangdump: requests in flight (/run/vmtest/nbdkit.requests; age = now - started):
   44.8 hangdump:   age 31.20 s: 203 write 0x1000 0x1000 13.6 copying
   44.8 hangdump: nbd debugfs
   44.9 [   44.9] task:kswapd0         state:D stack:0     pid:44
   44.9 hangdump: end
"""


def test_a_capture_names_the_thread_in_reclaim_the_request_and_the_blocked_task():
    lines = soak.capture_summary(CAPTURE)
    assert lines == [
        "nbdkit thread (nbdkit) state R, sendto: alloc_skb_with_frags allocating, in direct reclaim",
        "request: age 31.20 s: 203 write 0x1000 0x1000 13.6 copying",
        "blocked task: kswapd0"]


def test_a_capture_says_when_the_plugin_held_no_request_and_when_there_was_none():
    empty = CAPTURE.replace("   44.8 hangdump:   age 31.20 s: 203 write 0x1000 0x1000 13.6 copying\n", "")
    assert "no request in the plugin" in soak.capture_summary(empty)
    assert soak.capture_summary("[   52.4] block nbd0: Connection timed out\n") == [
        "no vm-hangdump capture"]


def test_repeated_lines_are_counted_once():
    twice = CAPTURE.replace("   44.9 [   44.9] task:kswapd0",
                            "   44.9 [   44.9] task:kswapd0         state:D\n   44.9 [   44.9] task:kswapd0")
    assert "blocked task: kswapd0 (x2)" in soak.capture_summary(twice)


def _row(scenario, verdict, figures, elapsed=50.0, boot=1):
    row = {"scenario": scenario, "boot": boot, "verdict": verdict, "reason": "why",
           "elapsed_s": elapsed, "figures": figures}
    if verdict != "pass":
        row.update(log="/tmp/x.log", capture=["blocked task: kswapd0"])
    return row


def test_the_summary_counts_verdicts_and_shows_the_least_swap_use_of_the_passes():
    rows = [_row("pressure", "pass", {"peak_swap_used_kb": 200 * 1024, "stress_total_kb": 362 * 1024}),
            _row("pressure", "pass", {"peak_swap_used_kb": 190 * 1024, "stress_total_kb": 361 * 1024}),
            # A hang's figures never count: a boot that stopped early swapped less.
            _row("pressure", "hang", {"peak_swap_used_kb": 10 * 1024}, boot=3),
            _row("lifecycle", "pass", {"swap_used_under_pressure_kb": 84 * 1024}),
            _row("integrity-swap", "fail", {}, elapsed=20.0)]
    text = soak.summarize(rows, 600)
    assert text.startswith("5 boots, 10 min of VM time\n")
    assert "| pressure | 3 | 2 | 1 | 0 | 50 | 190 | 361 |" in text
    assert "| lifecycle | 1 | 1 | 0 | 0 | 50 | 84 | - |" in text
    assert "| integrity-swap | 1 | 0 | 0 | 1 | 20 | - | - |" in text
    assert "- pressure boot 3: hang: why (log /tmp/x.log)\n  - blocked task: kswapd0" in text


def test_the_summary_says_which_boots_ran_on_a_busy_host(monkeypatch):
    monkeypatch.setattr(soak.os, "cpu_count", lambda: 2)
    quiet = _row("pressure", "pass", {})
    quiet["host_load"] = [0.4, 1.9]
    busy = _row("pressure", "crash", {}, boot=2)
    busy["host_load"] = [1.5, 4.6]
    old = _row("pressure", "pass", {}, boot=3)  # from before host_load was kept
    text = soak.summarize([quiet, busy, old], 60)
    assert "1 boots ran with the host's load average above its 2 CPUs" in text
    assert "- pressure boot 2: crash: why (log /tmp/x.log; host load 1.5 -> 4.6)" in text
