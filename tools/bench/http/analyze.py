#!/usr/bin/env python3
"""Helpers for tools/bench_http: parse wrk output, analyse the reload phase, print the summary.

  analyze.py wrk FILE                      -> one line "requests rps connect read write timeout non2xx failed"
  analyze.py reload NAME WRK_OUT HUPS_FILE -> the reload-phase report for one server (text), and a
                                              last line "RESULT k=v ..." for the summary
  analyze.py workers PROCESSES_JSON        -> the worker pids from sprocket's processes.json
  analyze.py listen PROCESSES_JSON         -> the first listen address from processes.json
  analyze.py freeport                      -> a free TCP port on 127.0.0.1

The reload analysis uses buckets.lua's per-100-ms response counts (wall clock, merged over wrk's
threads) and the wall-clock times at which the driver sent each SIGHUP:
  steady rate   = median of the 100 ms slices before the first SIGHUP (ramp-up, the first 0.5 s of
                  the run, excluded);
  1 s windows   = the responses in [HUP_i, HUP_i + 1 s) for every SIGHUP: the worst one over the
                  steady rate is the per-second dip;
  100 ms slices = every slice from the first SIGHUP to 1 s after the last: the worst one over the
                  steady rate is the fine-grained dip. The same statistic over the slices before the
                  first SIGHUP is printed beside it, as the noise floor with no reload at all.
A slice with no response at all is counted as 0 (a stall shows as a dip, not as a gap).
"""
import collections
import json
import re
import socket
import statistics
import sys

SLICE_MS = 100


def parse_wrk(text):
    r = {"requests": 0, "rps": 0.0, "connect": 0, "read": 0, "write": 0, "timeout": 0,
         "non2xx": 0, "lat_max": "", "duration": 0.0}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(ms|s|m)", text, re.M)
    if m:
        r["requests"] = int(m.group(1))
        r["duration"] = float(m.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(3)]
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["connect"], r["read"], r["write"], r["timeout"] = (int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"^\s*Latency\s+\S+\s+\S+\s+(\S+)", text, re.M)
    if m:
        r["lat_max"] = m.group(1)
    r["failed"] = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["non2xx"]
    return r


def fmt_rate(x):
    return f"{x / 1000:.1f}k"


def cmd_wrk(path):
    r = parse_wrk(open(path).read())
    if r["requests"] == 0:
        sys.exit(f"analyze.py: no wrk result in {path}")
    print(r["requests"], f'{r["rps"]:.0f}', r["connect"], r["read"], r["write"], r["timeout"],
          r["non2xx"], r["failed"])


def cmd_reload(name, wrk_path, hups_path):
    text = open(wrk_path).read()
    w = parse_wrk(text)
    buckets = {}
    for m in re.finditer(r"^BUCKET (\d+) (\d+) (\d+)$", text, re.M):
        buckets[int(m.group(1)) // SLICE_MS] = int(m.group(2))
    hups = [float(x) for x in open(hups_path).read().split()]
    if not buckets or not hups:
        sys.exit(f"analyze.py: no per-slice counts in {wrk_path} or no SIGHUP times in {hups_path}")
    first, last = min(buckets), max(buckets)
    series = {s: buckets.get(s, 0) for s in range(first, last + 1)}
    per_s = 1000 // SLICE_MS  # slices per second
    hup_slices = [int(h * 1000) // SLICE_MS for h in hups]
    # The run's first 0.5 s (connections opening) and its last, partial slice are not steady.
    lo = first + per_s // 2
    hi = last - 1
    pre = [series[s] for s in range(lo, hup_slices[0]) if lo <= s <= hi]
    during = [series[s] for s in range(hup_slices[0], min(hup_slices[-1] + per_s, hi + 1))]
    if len(pre) < 5 or not during:
        sys.exit("analyze.py: run too short to analyse (need >= 0.5 s of steady state before the first SIGHUP)")
    steady = statistics.median(pre)  # responses per slice
    steady_rps = steady * per_s

    # 1 s windows starting at each SIGHUP.
    windows = []
    for i, h in enumerate(hups):
        start = int(h * 1000) // SLICE_MS
        if start + per_s - 1 > hi:
            continue
        # A window starts at the slice holding the SIGHUP: the HUP's own slice is in it whole.
        windows.append((sum(series[s] for s in range(start, start + per_s)), i + 1))
    worst_win, worst_win_hup = min(windows) if windows else (0, 0)
    worst_slice = min(during)
    worst_slice_at = next(s for s in range(hup_slices[0], hup_slices[0] + len(during))
                          if series[s] == worst_slice)
    # Which SIGHUP preceded the worst slice, and by how long.
    prior = [(i + 1, h) for i, h in enumerate(hups) if int(h * 1000) // SLICE_MS <= worst_slice_at]
    at = ""
    if prior:
        n, h = prior[-1]
        at = f"starts {worst_slice_at * SLICE_MS / 1000 - h:+.2f} s from SIGHUP #{n}"
    noise_floor = min(pre)
    med_during = statistics.median(during)

    print(f"  requests                    {w['requests']} in {w['duration']:.1f} s "
          f"({fmt_rate(w['rps'])} req/s over the whole run; latency max {w['lat_max']})")
    print(f"  failed requests             {w['failed']}  (socket errors: connect {w['connect']}, "
          f"read {w['read']}, write {w['write']}, timeout {w['timeout']}; non-2xx/3xx {w['non2xx']})")
    print(f"  steady rate before reloads  {fmt_rate(steady_rps)} req/s (median of {len(pre)} 100 ms slices)")
    print(f"  median during reloads       {fmt_rate(med_during * per_s)} req/s "
          f"({med_during / steady:.2f}x steady)")
    print(f"  worst 1 s after a SIGHUP    {fmt_rate(worst_win)} req/s ({worst_win / steady_rps:.2f}x steady; "
          f"the second after SIGHUP #{worst_win_hup})")
    print(f"  worst 100 ms slice          {worst_slice} responses = {fmt_rate(worst_slice * per_s)} req/s "
          f"({worst_slice / steady:.2f}x steady; {at})")
    print(f"  worst 100 ms, no reloads    {fmt_rate(noise_floor * per_s)} req/s ({noise_floor / steady:.2f}x steady; "
          f"noise floor before the first SIGHUP)")
    secs = []
    for s0 in range(hup_slices[0], hi + 1 - per_s + 1, per_s):
        secs.append(sum(series[s] for s in range(s0, s0 + per_s)))
    print("  req/s per second from the first SIGHUP: " + " ".join(fmt_rate(x) for x in secs))
    # How the load is spread over the serving processes in the run's last whole second (after the
    # reloads): an uneven spread after a reload would show as a lasting dip, not a transient one.
    bypid = collections.defaultdict(dict)
    for m in re.finditer(r"^PID (\d+) (\d+) (\d+)$", text, re.M):
        bypid[int(m.group(1))][int(m.group(2))] = int(m.group(3))
    if len(bypid) >= 2:
        sec = sorted(bypid)[-2]
        counts = sorted(bypid[sec].items(), key=lambda kv: -kv[1])
        n = sum(c for _, c in counts)
        print(f"  responses per pid, last whole second: " +
              ", ".join(f"{pid} {100 * c / n:.0f}%" for pid, c in counts))
    print(f"RESULT requests={w['requests']} failed={w['failed']} connect={w['connect']} read={w['read']} "
          f"write={w['write']} timeout={w['timeout']} non2xx={w['non2xx']} "
          f"steady={steady_rps:.0f} dip1s={worst_win / steady_rps:.2f} dip100ms={worst_slice / steady:.2f} "
          f"noise100ms={noise_floor / steady:.2f} median_during={med_during / steady:.2f}")


def cmd_workers(path):
    with open(path) as f:
        j = json.load(f)
    print(" ".join(str(s["pid"]) for s in j.get("slots", []) if s.get("kind") == "worker"))


def cmd_listen(path):
    with open(path) as f:
        j = json.load(f)
    print(j["listen"][0])


def cmd_freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"wrk": cmd_wrk, "reload": cmd_reload, "workers": cmd_workers, "listen": cmd_listen,
     "freeport": cmd_freeport}[cmd](*args)


if __name__ == "__main__":
    main()
