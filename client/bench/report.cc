#include "client/bench/report.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "contract/page.h"

namespace zpaged::bench {
namespace {

constexpr double kMegabyte = 1e6;

// zpaged's figure over Redis', for each zpaged mode and Redis flavour.
struct Ratio {
  const TargetResult* zpaged;
  const TargetResult* redis;
  double put;      // pages/s, higher is better for zpaged
  double get;      // pages/s
  double get_p99;  // latency, lower is better for zpaged
  double get_mean;
  std::optional<double> memory_per_page;
  std::optional<double> put_cpu;  // server CPU per Put
};

double Over(double a, double b) { return b > 0 ? a / b : 0; }

// Wire bytes per page of a phase.
std::optional<double> WireBytesPerPage(const PhaseResult& phase) {
  if (!phase.wire_bytes || phase.operations == 0) return std::nullopt;
  return static_cast<double>(*phase.wire_bytes) / phase.operations;
}

std::vector<Ratio> RatiosOf(const std::vector<TargetResult>& results) {
  std::vector<Ratio> ratios;
  for (const TargetResult& z : results) {
    if (z.store != "zpaged") continue;
    for (const TargetResult& r : results) {
      if (r.store != "redis") continue;
      Ratio ratio{};
      ratio.zpaged = &z;
      ratio.redis = &r;
      ratio.put = Over(z.put.pages_per_second(), r.put.pages_per_second());
      ratio.get = Over(z.get.pages_per_second(), r.get.pages_per_second());
      ratio.get_p99 = Over(z.get.latency.PercentileMicros(0.99),
                           r.get.latency.PercentileMicros(0.99));
      ratio.get_mean =
          Over(z.get.latency.MeanMicros(), r.get.latency.MeanMicros());
      std::optional<double> zm = MemoryBytesPerPage(z);
      std::optional<double> rm = MemoryBytesPerPage(r);
      if (zm && rm) ratio.memory_per_page = Over(*zm, *rm);
      std::optional<double> zc = CpuSecondsPerMillion(z.put);
      std::optional<double> rc = CpuSecondsPerMillion(r.put);
      if (zc && rc) ratio.put_cpu = Over(*zc, *rc);
      ratios.push_back(ratio);
    }
  }
  return ratios;
}

std::string Optional(std::optional<double> value, const char* format) {
  return value ? absl::StrFormat(format, *value) : std::string("-");
}

std::string JsonNumber(std::optional<double> value) {
  return value ? absl::StrFormat("%.6g", *value) : std::string("null");
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

void AppendPhaseJson(std::vector<std::string>& fields, const char* name,
                     const PhaseResult& phase) {
  const double pages_per_s = phase.pages_per_second();
  fields.push_back(absl::StrFormat("\"%s_pages\": %d", name, phase.operations));
  fields.push_back(absl::StrFormat("\"%s_errors\": %d", name, phase.errors));
  fields.push_back(
      absl::StrFormat("\"%s_pages_per_s\": %s", name, JsonNumber(pages_per_s)));
  fields.push_back(
      absl::StrFormat("\"%s_mb_per_s\": %s", name,
                      JsonNumber(pages_per_s * kPageSize / kMegabyte)));
  fields.push_back(absl::StrFormat("\"%s_mean_us\": %s", name,
                                   JsonNumber(phase.latency.MeanMicros())));
  for (auto [label, q] : {std::pair{"p50", 0.5}, std::pair{"p99", 0.99},
                          std::pair{"p999", 0.999}}) {
    fields.push_back(
        absl::StrFormat("\"%s_%s_us\": %s", name, label,
                        JsonNumber(phase.latency.PercentileMicros(q))));
  }
  fields.push_back(absl::StrFormat("\"server_%s_cpu_s_per_million\": %s", name,
                                   JsonNumber(CpuSecondsPerMillion(phase))));
  fields.push_back(absl::StrFormat("\"%s_wire_bytes_per_page\": %s", name,
                                   JsonNumber(WireBytesPerPage(phase))));
}

}  // namespace

std::optional<double> CpuSecondsPerMillion(const PhaseResult& phase) {
  if (!phase.server_cpu_seconds || phase.operations == 0) return std::nullopt;
  return *phase.server_cpu_seconds * 1e6 / phase.operations;
}

std::optional<double> MemoryBytesPerPage(const TargetResult& result) {
  const uint64_t stored = result.put.operations - result.put.errors;
  if (!result.put.server_memory_growth_bytes || stored == 0) {
    return std::nullopt;
  }
  return static_cast<double>(*result.put.server_memory_growth_bytes) / stored;
}

std::string FormatTable(const RunOptions& options,
                        const std::vector<TargetResult>& results) {
  std::string out = absl::StrFormat(
      "%d channels x %d in flight, %s\n\n", options.channels, options.depth,
      options.duration > absl::ZeroDuration()
          ? absl::StrCat(absl::FormatDuration(options.duration), " per phase")
          : absl::StrCat(options.pages, " pages"));
  absl::StrAppendFormat(
      &out, "%-20s %-5s %10s %8s %8s %8s %9s %7s %11s %11s %10s\n", "target",
      "phase", "pages/s", "MB/s", "p50 us", "p99 us", "p99.9 us", "errors",
      "cpu s/Mop", "bytes/page", "wire B/op");
  for (const TargetResult& result : results) {
    for (auto [name, phase] :
         {std::pair{"put", &result.put}, std::pair{"get", &result.get}}) {
      absl::StrAppendFormat(
          &out,
          "%-20s %-5s %10.0f %8.1f %8.1f %8.1f %9.1f %7d %11s %11s %10s\n",
          absl::StrCat(result.store, " ", result.mode), name,
          phase->pages_per_second(),
          phase->pages_per_second() * kPageSize / kMegabyte,
          phase->latency.PercentileMicros(0.5),
          phase->latency.PercentileMicros(0.99),
          phase->latency.PercentileMicros(0.999),
          phase->errors + phase->mismatches,
          Optional(CpuSecondsPerMillion(*phase), "%.2f"),
          phase == &result.put ? Optional(MemoryBytesPerPage(result), "%.0f")
                               : std::string("-"),
          Optional(WireBytesPerPage(*phase), "%.0f"));
    }
  }
  std::vector<Ratio> ratios = RatiosOf(results);
  if (!ratios.empty())
    out +=
        "\nzpaged / redis (pages/s: higher is better; "
        "latency, memory, cpu: lower is better)\n";
  for (const Ratio& ratio : ratios) {
    absl::StrAppendFormat(
        &out,
        "  %-6s / %-3s  put %.2fx  get %.2fx  get p99 %.2fx  bytes/page %s  "
        "put cpu %s\n",
        ratio.zpaged->mode, ratio.redis->mode, ratio.put, ratio.get,
        ratio.get_p99, Optional(ratio.memory_per_page, "%.2fx"),
        Optional(ratio.put_cpu, "%.2fx"));
  }
  for (const TargetResult& result : results) {
    const std::string& first = result.put.first_error.empty()
                                   ? result.get.first_error
                                   : result.put.first_error;
    if (!first.empty()) {
      absl::StrAppendFormat(&out, "\n%s %s: first error: %s\n", result.store,
                            result.mode, first);
    }
  }
  return out;
}

std::string FormatJson(const RunOptions& options,
                       const std::vector<TargetResult>& results) {
  std::vector<std::string> objects;
  for (const TargetResult& result : results) {
    std::vector<std::string> fields = {
        absl::StrCat("\"target\": ", JsonString(result.store)),
        absl::StrCat("\"mode\": ", JsonString(result.mode)),
        absl::StrCat("\"channels\": ", options.channels),
        absl::StrCat("\"depth\": ", options.depth)};
    AppendPhaseJson(fields, "put", result.put);
    AppendPhaseJson(fields, "get", result.get);
    fields.push_back(
        absl::StrCat("\"get_mismatches\": ", result.get.mismatches));
    fields.push_back(absl::StrCat("\"delete_errors\": ", result.delete_errors));
    fields.push_back(absl::StrCat("\"memory_bytes_per_page\": ",
                                  JsonNumber(MemoryBytesPerPage(result))));
    fields.push_back(absl::StrCat(
        "\"first_error\": ",
        JsonString(result.put.first_error.empty() ? result.get.first_error
                                                  : result.put.first_error)));
    objects.push_back(absl::StrCat("    {", absl::StrJoin(fields, ", "), "}"));
  }
  std::vector<std::string> ratios;
  for (const Ratio& ratio : RatiosOf(results)) {
    ratios.push_back(absl::StrFormat(
        "    {\"zpaged\": %s, \"redis\": %s, \"put\": %s, \"get\": %s, "
        "\"get_p99\": %s, \"get_mean\": %s, \"memory_per_page\": %s, "
        "\"put_cpu\": %s}",
        JsonString(ratio.zpaged->mode), JsonString(ratio.redis->mode),
        JsonNumber(ratio.put), JsonNumber(ratio.get), JsonNumber(ratio.get_p99),
        JsonNumber(ratio.get_mean), JsonNumber(ratio.memory_per_page),
        JsonNumber(ratio.put_cpu)));
  }
  return absl::StrCat(
      "{\n  \"config\": {\"channels\": ", options.channels,
      ", \"depth\": ", options.depth, ", \"pages\": ", options.pages,
      ", \"seconds\": ", absl::ToDoubleSeconds(options.duration),
      "},\n  \"results\": [\n", absl::StrJoin(objects, ",\n"),
      "\n  ],\n  \"ratios\": [\n", absl::StrJoin(ratios, ",\n"), "\n  ]\n}\n");
}

}  // namespace zpaged::bench
