"""Draws bench/results.png from bench/results.json: cold start and CPU per request of
this service beside the workload floor, the runtime floor and django-dynamodb-sessions
0.7, medians with min-max whiskers."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OURS, FLOOR, RUNTIME, DJANGO = "#2b6cb0", "#68d391", "#c6f6d5", "#a0aec0"


def bars(ax, title, unit, entries, target):
    names = [name for name, _, _ in entries]
    stats = [stat for _, stat, _ in entries]
    medians = [s["median"] for s in stats]
    low = [s["median"] - s["min"] for s in stats]
    high = [s["max"] - s["median"] for s in stats]
    ax.bar(names, medians, yerr=[low, high], capsize=5,
           color=[color for _, _, color in entries])
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(unit + " (log scale)")
    ax.tick_params(axis="x", labelrotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.axhline(target, color="#c53030", linestyle="--", linewidth=1)
    ax.text(len(entries) - 0.55, target, f"target {target:g}", color="#c53030",
            va="bottom", ha="right")
    for i, m in enumerate(medians):
        ax.text(i, m, f"{m:,.1f}", ha="center", va="bottom")


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        r = json.load(f)
    cold, warm = r["cold_start"], r["warm"]
    c = cold["configurations"]

    def own(name):
        return c[name]["ms_without_emulator"]

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.5))
    bars(left, "Cold start to first answer, less the emulator", "ms", [
        ("ours", own("ours"), OURS),
        ("ours, TLS", own("ours_tls"), OURS),
        ("workload floor", own("workload_floor"), FLOOR),
        ("workload floor, TLS", own("workload_floor_tls"), FLOOR),
        ("runtime floor", own("runtime_floor"), RUNTIME),
        ("django-dynamodb-sessions", cold["django_ms_without_emulator"], DJANGO),
    ], 15)
    floors = warm["floors"]
    bars(right, "CPU per request, warm (user + sys)", "µs", [
        ("ours", warm["ours_cpu_us_per_request"], OURS),
        ("workload floor", floors["workload_floor"]["cpu_us_per_request"], FLOOR),
        ("runtime floor", floors["runtime_floor"]["cpu_us_per_request"], RUNTIME),
        ("django-dynamodb-sessions", warm["django_cpu_us_per_request"], DJANGO),
    ], 50)
    fig.tight_layout()
    fig.savefig(target, dpi=100, metadata={"Software": None})


if __name__ == "__main__":
    main()
