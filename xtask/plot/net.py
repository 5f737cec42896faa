"""Draws target/bench/net.json (schema tessera-bench-net/1, see xtask/src/bench/net.rs) as
the paper's Figure 4: guest CPU utilisation against achieved throughput, one line per
system, error bars from the min-max range of the repetitions.

usage: python3 net.py NET_JSON OUT_PNG
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bar(summary):
    """(median, lower error, upper error) of a Summary, or None."""
    if not summary:
        return None
    m = summary["median"]
    return m, m - summary["min"], summary["max"] - m


def style(system):
    """Line style: Tessera solid with round markers, Linux dashed with squares."""
    if system["os"] == "linux":
        return {"linestyle": "--", "marker": "s"}
    return {"linestyle": "-", "marker": "o"}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        report = json.load(f)
    if report.get("schema") != "tessera-bench-net/1":
        sys.exit(f"{sys.argv[1]}: not a tessera-bench-net/1 report")
    fig, ax = plt.subplots(figsize=(8, 5.5))
    drawn = 0
    for system in report["systems"]:
        xs, ys, xerr, yerr = [], [], [[], []], [[], []]
        for point in system.get("points") or []:
            t, c = bar(point.get("throughput_mbps")), bar(point.get("guest_cpu_pct"))
            if t is None or c is None:
                continue
            xs.append(t[0])
            ys.append(c[0])
            xerr[0].append(t[1])
            xerr[1].append(t[2])
            yerr[0].append(c[1])
            yerr[1].append(c[2])
        if not xs:
            continue
        peak = bar((system.get("max") or {}).get("throughput_mbps"))
        label = system["name"]
        if peak is not None:
            label += f" (max {peak[0]:.0f} Mbit/s)"
        ax.errorbar(
            xs,
            ys,
            xerr=xerr,
            yerr=yerr,
            label=label,
            capsize=3,
            linewidth=1.4,
            markersize=5,
            **style(system),
        )
        drawn += 1

    method = report.get("method", {})
    ax.set_xlabel("achieved throughput (Mbit/s, iperf3 receiver side)")
    ax.set_ylabel("guest CPU utilisation (%)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.set_title(
        "TCP receive under QEMU TCG behind TAP: guest CPU against throughput\n"
        f"{report.get('profile', '?')} profile: {method.get('repetitions', '?')} runs per load, "
        f"{method.get('window_s', '?')} s measured after {method.get('skip_s', '?')} s; "
        "median, min-max bars",
        fontsize=10,
    )
    if drawn:
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
