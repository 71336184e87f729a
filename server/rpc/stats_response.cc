#include "server/rpc/stats_response.h"

#include "absl/base/macros.h"

namespace zpaged {

void FillStatsResponse(const PageStats& stats, v1::StatsResponse* response) {
  const google::protobuf::Descriptor* descriptor = response->GetDescriptor();
  const google::protobuf::Reflection* reflection = response->GetReflection();
  for (const PageStatField& field : kPageStatFields) {
    if (field.response_field == nullptr) continue;
    const google::protobuf::FieldDescriptor* target =
        descriptor->FindFieldByName(field.response_field);
    // stats_response_test checks every name in the table.
    ABSL_ASSERT(target != nullptr);
    // Adds, so that several counters may sum into one field (rejected_puts).
    reflection->SetUInt64(
        response, target,
        reflection->GetUInt64(*response, target) + stats.*field.member);
  }
  response->set_density(stats.density());
}

}  // namespace zpaged
