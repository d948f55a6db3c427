"""Alternating latency rounds: python3 alternate.py ROUNDS CMD [CMD ...]

Each round runs every command once (the order flips every round), so a machine that drifts
during the measurement affects all commands alike. Prints the median, mean, p10 and p90 per
command and its median relative to the first. A command that fails is reported.
"""
import os
import statistics
import sys
import time


def run(argv, devnull):
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
    _, status = os.waitpid(pid, 0)
    return (time.perf_counter() - start) * 1000, status


def main():
    rounds = int(sys.argv[1])
    cmds = [c.split() for c in sys.argv[2:]]
    devnull = os.open(os.devnull, os.O_RDWR)
    times = [[] for _ in cmds]
    for argv in cmds:  # warm-up
        for _ in range(3):
            run(argv, devnull)
    for r in range(rounds):
        order = range(len(cmds)) if r % 2 == 0 else reversed(range(len(cmds)))
        for i in order:
            ms, status = run(cmds[i], devnull)
            if status != 0:
                print(f"failed ({status}): {' '.join(cmds[i])}", file=sys.stderr)
            times[i].append(ms)
    base = statistics.median(times[0])
    for argv, t in zip(cmds, times):
        t = sorted(t)
        med = statistics.median(t)
        print(f"{med:6.2f} ms median  {statistics.mean(t):6.2f} mean  p10 {t[len(t) // 10]:5.2f}  "
              f"p90 {t[9 * len(t) // 10]:5.2f}  x{med / base:4.2f}  {' '.join(argv)[:80]}")


if __name__ == "__main__":
    main()
