"""Draws bench/results.png from bench/results.json: cold start and CPU per request,
ours against django-dynamodb-sessions 0.7, medians with min-max whiskers."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def bars(ax, title, unit, ours, seed, target):
    names = ["this service (Rust)", "django-dynamodb-sessions 0.7"]
    medians = [ours["median"], seed["median"]]
    low = [ours["median"] - ours["min"], seed["median"] - seed["min"]]
    high = [ours["max"] - ours["median"], seed["max"] - seed["median"]]
    ax.bar(names, medians, yerr=[low, high], capsize=6, color=["#2b6cb0", "#a0aec0"])
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(unit + " (log scale)")
    ax.axhline(target, color="#c53030", linestyle="--", linewidth=1)
    ax.text(1.45, target, f"target {target:g}", color="#c53030", va="bottom", ha="right")
    for i, m in enumerate(medians):
        ax.text(i, m, f"{m:,.1f}", ha="center", va="bottom")


def main():
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        r = json.load(f)
    fig, (cold, cpu) = plt.subplots(1, 2, figsize=(11, 4.5))
    bars(cold, "Cold start to first answered request", "ms",
         r["cold_start"]["ours_ms"], r["cold_start"]["seed_ms"], 15)
    bars(cpu, "CPU per request, warm (user + sys)", "µs",
         r["warm"]["ours_cpu_us_per_request"], r["warm"]["seed_cpu_us_per_request"], 50)
    fig.tight_layout()
    fig.savefig(target, dpi=100, metadata={"Software": None})


if __name__ == "__main__":
    main()
