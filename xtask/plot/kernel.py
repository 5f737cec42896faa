"""Draws target/bench/kernel.json (schema tessera-bench-kernel/1, see
xtask/src/bench_kernel.rs) as the paper's Figure 5: the CPU time spent in the seL4 kernel
at top load, one stacked bar per interrupt delivery method, a segment per kind of kernel
entry (kinds under 0.2 % in every method are drawn together as "rest").

usage: python3 kernel.py KERNEL_JSON OUT_PNG
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SMALL = 0.002


def main(source, out):
    report = json.load(open(source))
    methods = report["methods"]
    kinds = [
        k
        for k in report["kinds"]
        if any(m["by_kind"][k]["share"] >= SMALL for m in methods)
    ]
    names = [m["method"] for m in methods]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    bottom = [0.0] * len(methods)
    for kind in kinds:
        values = [100 * m["by_kind"][kind]["share"] for m in methods]
        ax.bar(names, values, 0.6, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values)]
    rest = [100 * m["kernel"]["share"] - b for m, b in zip(methods, bottom)]
    if any(r > 0 for r in rest):
        ax.bar(names, rest, 0.6, bottom=bottom, label="rest", color="lightgrey")
    for i, m in enumerate(methods):
        mbit = (m["throughput_bps"] or 0) / 1e6
        spread = m["kernel_share_per_window"]
        note = f"{mbit:.0f} Mbit/s"
        if spread:
            note += f"\nwindows {100 * spread['min']:.0f}-{100 * spread['max']:.0f} %"
        ax.text(i, 100 * m["kernel"]["share"], note, ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("NIC interrupt delivery (e1000e, unpaced iperf3 to the guest)")
    ax.set_ylabel("CPU time in the seL4 kernel (%)")
    ax.set_title("Kernel share by entry kind at top load")
    ax.set_ylim(0, max([100 * m["kernel"]["share"] for m in methods] + [1]) * 1.25)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
