"""Draws bench/results.png from bench/results.json: cold start and CPU per request of
this service beside the workload floor, the runtime floor and django-dynamodb-sessions
0.7, medians with min-max whiskers; and, when the run measured Lambda's CPU share, GET's
p99 billed duration and Lambda's cost per million requests against memory size."""

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


def curve(latency, cost, memory):
    """GET p99 billed duration and Lambda's cost against memory size, per target and
    period; the chosen default and the latency budget marked."""
    colors = {"ours": OURS, "workload_floor": FLOOR, "django": DJANGO}
    for target, color in colors.items():
        for period, style in ((20.0, "-"), (100.0, "--")):
            rows = [r for r in memory["rows"] if r["target"] == target
                    and r["period_ms"] == period and "ops" in r]
            if not rows:
                continue
            sizes = [r["memory_mb"] for r in rows]
            label = f"{target.replace('_', ' ')}, {period:g} ms period"
            latency.plot(sizes, [r["ops"]["get"]["billed_p99_ms"] for r in rows], style,
                         color=color, marker="o", label=label)
            cost.plot(sizes, [r["lambda_per_million"] for r in rows], style,
                      color=color, marker="o", label=label)
    budget = memory["get_p99_budget_ms"]
    latency.axhline(budget, color="#c53030", linestyle=":", linewidth=1)
    latency.text(128, budget, f"budget {budget:g} ms", color="#c53030", va="bottom")
    chosen = (memory.get("chosen") or {}).get("memory_mb")
    for ax in (latency, cost):
        ax.set_xscale("log", base=2)
        ax.set_xticks([r for r in (128, 256, 512, 1024, 1769)])
        ax.set_xticklabels(["128", "256", "512", "1024", "1769"])
        ax.set_xlabel("memory, MB (CPU share: memory / 1769 MB of one core)")
        if chosen:
            ax.axvline(chosen, color="#2d3748", linestyle=":", linewidth=1)
    latency.set_yscale("log")
    latency.set_title("GET p99 billed duration (x86_64 under a CPU quota)", fontsize=10)
    latency.set_ylabel("ms (log scale)")
    cost.set_title("Lambda, USD per million requests (80% GET, 20% merge-update)", fontsize=10)
    cost.set_ylabel("USD")
    latency.legend(fontsize=7)


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        r = json.load(f)
    cold, warm = r["cold_start"], r["warm"]
    c = cold["configurations"]

    def own(name):
        return c[name]["ms_without_emulator"]

    memory = r.get("memory_curve") or {}
    if "rows" in memory:
        fig, axes = plt.subplots(2, 2, figsize=(12, 11))
        (left, right), (latency, cost) = axes
        curve(latency, cost, memory)
    else:
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
