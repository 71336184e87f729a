#!/usr/bin/env python3
"""Summarises scripts/bench.sh's runs: medians, ratios, the floor, targets.

Usage: bench_summary.py OUT_DIR RUNS
OUT_DIR holds throughput.N.json, batch.N.json, edge.N.json, clients.N.json and
latency.N.json (zpaged-bench --json) and floor.json (page_codec_bench
--benchmark_format=json). Writes
OUT_DIR/summary.json as well as printing the summary.
"""
import json
import os
import statistics
import sys

out, runs = sys.argv[1], int(sys.argv[2])


def load(name):
    return [json.load(open(os.path.join(out, f"{name}.{i}.json")))
            for i in range(1, runs + 1)]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(reports):
    """{(target, mode): {field: median}} and {(zpaged, redis): {field: median}}."""
    rows, ratios = {}, {}
    for report in reports:
        for r in report["results"]:
            row = rows.setdefault((r["target"], r["mode"]), {})
            for k, v in r.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    row.setdefault(k, []).append(v)
        for r in report["ratios"]:
            row = ratios.setdefault((r["zpaged"], r["redis"]), {})
            for k, v in r.items():
                if k not in ("zpaged", "redis"):
                    row.setdefault(k, []).append(v)
    pick = lambda table: {key: {k: median(v) for k, v in row.items()}
                          for key, row in table.items()}
    return pick(rows), pick(ratios)


def fmt(value, spec):
    width = int(spec.split(".")[0] or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def print_config(title, rows, ratios):
    print(f"\n{title}, medians of {runs} runs")
    print(f"  {'target':<18} {'phase':<5} {'pages/s':>9} {'MB/s':>7} "
          f"{'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'cpu us/op':>10} "
          f"{'bytes/page':>10} {'wire B/op':>9}")
    for (target, mode), r in rows.items():
        for phase in ("put", "get"):
            cpu = r.get(f"server_{phase}_cpu_s_per_million")
            print(f"  {target + ' ' + mode:<18} {phase:<5} "
                  f"{fmt(r[f'{phase}_pages_per_s'], '9.0f')} "
                  f"{fmt(r[f'{phase}_mb_per_s'], '7.1f')} "
                  f"{fmt(r[f'{phase}_p50_us'], '8.1f')} "
                  f"{fmt(r[f'{phase}_p99_us'], '8.1f')} "
                  f"{fmt(r[f'{phase}_p999_us'], '9.1f')} "
                  f"{fmt(cpu, '10.2f')} "
                  f"{fmt(r.get('memory_bytes_per_page') if phase == 'put' else None, '10.0f')} "
                  f"{fmt(r.get(f'{phase}_wire_bytes_per_page'), '9.0f')}")
    print("  zpaged / redis (median of the per-run ratios)")
    for (zpaged, redis), r in ratios.items():
        print(f"    {zpaged:<11} / {redis:<3}  put {fmt(r['put'], '.2f')}x  "
              f"get {fmt(r['get'], '.2f')}x  get p99 {fmt(r['get_p99'], '.2f')}x  "
              f"get mean {fmt(r.get('get_mean'), '.2f')}x  "
              f"bytes/page {fmt(r['memory_per_page'], '.2f')}x  "
              f"put cpu {fmt(r['put_cpu'], '.2f')}x")


throughput_rows, throughput_ratios = medians(load("throughput"))
batch_rows, batch_ratios = medians(load("batch"))
edge_rows, edge_ratios = medians(load("edge"))
clients_rows, clients_ratios = medians(load("clients"))
latency_rows, latency_ratios = medians(load("latency"))
print_config("throughput: 2 channels x 16 pages in flight", throughput_rows,
             throughput_ratios)
print_config("batch: 2 channels x 4 calls of 16 pages (Redis: 2 x 64 pipelined)",
             batch_rows, batch_ratios)
print_config("edge: the library, 2 channels x 4 calls of 16 pages, LZ4 at the edge "
             "or whole (Redis: client LZ4, 2 x 64 pipelined)", edge_rows, edge_ratios)
print_config("clients: 32 channels x 1 unary call (Redis: 32 x 1)", clients_rows,
             clients_ratios)
print_config("latency: 1 channel, 1 in flight", latency_rows, latency_ratios)

floor_rows = [b for b in json.load(open(os.path.join(out, "floor.json")))["benchmarks"]
              if b.get("aggregate_name") == "median"]
floor = {b["run_name"]: b["real_time"] / 1000.0 for b in floor_rows}
put_floor_us = floor.get("BM_PutFloor")
get_floor_us = floor.get("BM_GetFloor")
verify_lz4_us = floor.get("BM_VerifyEncoded/0")
sent_bytes = next((b.get("sent_bytes_per_page") for b in floor_rows
                   if b["run_name"] == "BM_VerifyEncoded/0"), None)
print(f"\ncodec floor (page_codec_bench, medians): put {fmt(put_floor_us, '.2f')} us, "
      f"get {fmt(get_floor_us, '.2f')} us per page; checking a client's LZ4 page "
      f"{fmt(verify_lz4_us, '.2f')} us; a corpus page compressed at the edge "
      f"{fmt(sent_bytes, '.0f')} bytes")

batch = batch_rows.get(("zpaged", "batch16"), {})
redis_raw = throughput_rows.get(("redis", "raw"), {})
stream = throughput_rows.get(("zpaged", "stream"), {})
put_cpu_us = batch.get("server_put_cpu_s_per_million")
memory_ratio = (stream["memory_bytes_per_page"] / redis_raw["memory_bytes_per_page"]
                if stream.get("memory_bytes_per_page") and
                redis_raw.get("memory_bytes_per_page") else None)
ratio = lambda table, key, field: table.get(key, {}).get(field)
edge = edge_rows.get(("zpaged", "client-lz4"), {})
per_stored = lambda field: (edge[field] / sent_bytes
                            if edge.get(field) and sent_bytes else None)
targets = [
    ("edge: batch Put, client LZ4 / Redis + client LZ4, same pages in flight",
     ratio(edge_ratios, ("client-lz4", "lz4"), "put"), ">=", 1.0),
    ("edge: batch Get, client LZ4 decode / Redis + client LZ4",
     ratio(edge_ratios, ("client-lz4", "lz4"), "get"), ">=", 1.0),
    ("edge: server CPU per batch Put page, client-compressed (us)",
     edge.get("server_put_cpu_s_per_million"), "<=", 4.0),
    ("edge: server CPU per batch Get page, as stored (us)",
     edge.get("server_get_cpu_s_per_million"), "<=", 2.5),
    ("edge: Put bytes on the wire per page / stored size",
     per_stored("put_wire_bytes_per_page"), "<=", 1.05),
    ("edge: Get bytes on the wire per page / stored size",
     per_stored("get_wire_bytes_per_page"), "<=", 1.05),

    ("batch Put (16/message) / Redis+client-LZ4 SET, 128 in flight",
     ratio(batch_ratios, ("batch16", "lz4"), "put"), ">=", 1.0),
    ("batch Get / Redis+client-LZ4 GET, 128 in flight",
     ratio(batch_ratios, ("batch16", "lz4"), "get"), ">=", 1.0),
    ("batch Put / Redis raw SET pipelined", ratio(batch_ratios, ("batch16", "raw"), "put"), ">=", 1.0),
    ("batch Get / Redis raw GET pipelined", ratio(batch_ratios, ("batch16", "raw"), "get"), ">=", 1.0),
    ("unary Get at depth 1, mean / Redis GET", ratio(latency_ratios, ("unary", "raw"), "get_mean"), "<=", 2.0),
    ("unary Get at depth 1, p99 / Redis GET", ratio(latency_ratios, ("unary", "raw"), "get_p99"), "<=", 2.0),
    ("unary Put, 32 clients / Redis SET, 32 clients", ratio(clients_ratios, ("unary", "raw"), "put"), ">=", 1.0),
    ("unary Get, 32 clients / Redis GET, 32 clients", ratio(clients_ratios, ("unary", "raw"), "get"), ">=", 1.0),
    ("server CPU per page, batch Put / codec floor",
     put_cpu_us / put_floor_us if put_cpu_us and put_floor_us else None, "<=", 1.5),
    ("resident bytes per page / Redis raw used_memory per page", memory_ratio, "<=", 0.45),
]
print("\ntargets")
verdicts = []
for name, value, op, bound in targets:
    met = value is not None and (value >= bound if op == ">=" else value <= bound)
    verdicts.append({"target": name, "value": value, "bound": f"{op} {bound}", "met": met})
    unit = "" if name.endswith("(us)") else "x"
    print(f"  {'met   ' if met else 'MISSED'}  {name}: {fmt(value, '.2f')}{unit} "
          f"(target {op} {bound}{unit})")

json.dump({"runs": runs,
           "throughput": {f"{t} {m}": r for (t, m), r in throughput_rows.items()},
           "throughput_ratios": {f"{z}/{r}": v for (z, r), v in throughput_ratios.items()},
           "batch": {f"{t} {m}": r for (t, m), r in batch_rows.items()},
           "batch_ratios": {f"{z}/{r}": v for (z, r), v in batch_ratios.items()},
           "edge": {f"{t} {m}": r for (t, m), r in edge_rows.items()},
           "edge_ratios": {f"{z}/{r}": v for (z, r), v in edge_ratios.items()},
           "clients": {f"{t} {m}": r for (t, m), r in clients_rows.items()},
           "clients_ratios": {f"{z}/{r}": v for (z, r), v in clients_ratios.items()},
           "latency": {f"{t} {m}": r for (t, m), r in latency_rows.items()},
           "latency_ratios": {f"{z}/{r}": v for (z, r), v in latency_ratios.items()},
           "floor_us": {"put": put_floor_us, "get": get_floor_us},
           "targets": verdicts},
          open(os.path.join(out, "summary.json"), "w"), indent=1)
