#!/usr/bin/env python3
"""Summarises scripts/density_bench.sh's runs: medians and issue 14's targets.

Usage: density_summary.py OUT_DIR RUNS
OUT_DIR holds batch.POOL_CODEC.N.json (zpaged beside Redis' raw, lz4 and
zstd flavours) and latency.POOL_CODEC.N.json (zpaged alone, depth 1), from
zpaged-bench --json. Ratios are medians of the per-run ratios, each taken
between figures of the same run. Writes OUT_DIR/summary.json too.
"""
import json
import os
import statistics
import sys

out, runs = sys.argv[1], int(sys.argv[2])
flavours = [f"{pool}_{codec}" for pool in ("zbud", "dense") for codec in ("lz4", "zstd")]


def load(kind, flavour, run):
    report = json.load(open(os.path.join(out, f"{kind}.{flavour}.{run}.json")))
    return {(r["target"], r["mode"]): r for r in report["results"]}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


# Per run: every figure, by flavour.
per_run = []
for run in range(1, runs + 1):
    figures = {}
    for flavour in flavours:
        batch = load("batch", flavour, run)
        latency = load("latency", flavour, run)
        zpaged = next(r for (t, _), r in batch.items() if t == "zpaged")
        figures[flavour] = {
            "bytes_per_page": zpaged["memory_bytes_per_page"],
            "redis": {m: r["memory_bytes_per_page"]
                      for (t, m), r in batch.items() if t == "redis"},
            "get_pages_per_s": zpaged["get_pages_per_s"],
            "put_pages_per_s": zpaged["put_pages_per_s"],
            "get_mean_us": next(iter(latency.values()))["get_mean_us"],
        }
    per_run.append(figures)

print(f"\nresident bytes per stored page, medians of {runs} runs")
print(f"  {'store':<22} {'bytes/page':>10}")
for flavour in flavours:
    print(f"  zpaged {flavour:<15} "
          f"{fmt(median([f[flavour]['bytes_per_page'] for f in per_run]), '10.0f')}")
for redis in ("raw", "lz4", "zstd"):
    # Redis ran beside every flavour: all of its runs count.
    values = [f[fl]["redis"].get(redis) for f in per_run for fl in flavours]
    print(f"  redis {redis:<16} {fmt(median(values), '10.0f')}")


def ratio(flavour, redis):
    return median([f[flavour]["bytes_per_page"] / f[flavour]["redis"][redis]
                   for f in per_run if f[flavour]["redis"].get(redis)])


def speed(field, flavour, base):
    return median([f[flavour][field] / f[base][field] for f in per_run])


print(f"\nspeed, medians of {runs} runs (batch: 128 pages in flight; depth 1: one Get)")
print(f"  {'flavour':<12} {'Put pages/s':>11} {'Get pages/s':>11} {'Get mean us':>11}")
for flavour in flavours:
    print(f"  {flavour:<12} "
          f"{fmt(median([f[flavour]['put_pages_per_s'] for f in per_run]), '11.0f')} "
          f"{fmt(median([f[flavour]['get_pages_per_s'] for f in per_run]), '11.0f')} "
          f"{fmt(median([f[flavour]['get_mean_us'] for f in per_run]), '11.1f')}")

targets = [
    ("dense + lz4 bytes/page / Redis + client LZ4", ratio("dense_lz4", "lz4"), "<=", 0.90),
    ("dense + zstd bytes/page / Redis + client zstd", ratio("dense_zstd", "zstd"), "<=", 0.90),
    ("dense + zstd bytes/page / Redis + client LZ4", ratio("dense_zstd", "lz4"), "<=", 0.70),
    ("dense / zbud batch Get pages/s, lz4", speed("get_pages_per_s", "dense_lz4", "zbud_lz4"), ">=", 0.90),
    ("dense / zbud batch Get pages/s, zstd", speed("get_pages_per_s", "dense_zstd", "zbud_zstd"), ">=", 0.90),
    ("dense / zbud depth-1 Get mean latency, lz4", speed("get_mean_us", "dense_lz4", "zbud_lz4"), "<=", 1.10),
    ("dense / zbud depth-1 Get mean latency, zstd", speed("get_mean_us", "dense_zstd", "zbud_zstd"), "<=", 1.10),
]
print("\ntargets (issue 14)")
verdicts = []
for name, value, op, bound in targets:
    met = value is not None and (value >= bound if op == ">=" else value <= bound)
    verdicts.append({"target": name, "value": value, "bound": f"{op} {bound}", "met": met})
    print(f"  {'met   ' if met else 'MISSED'}  {name}: {fmt(value, '.3f')}x (target {op} {bound}x)")

json.dump({"runs": runs, "per_run": per_run, "targets": verdicts},
          open(os.path.join(out, "summary.json"), "w"), indent=1)
