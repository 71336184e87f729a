#include "server/rpc/stats_response.h"

#include "gtest/gtest.h"

namespace zpaged {
namespace {

TEST(StatsResponseTest, EveryNamedFieldExistsAndIsAUint64) {
  const google::protobuf::Descriptor* descriptor =
      v1::StatsResponse::descriptor();
  for (const PageStatField& field : kPageStatFields) {
    if (field.response_field == nullptr) continue;
    const google::protobuf::FieldDescriptor* target =
        descriptor->FindFieldByName(field.response_field);
    ASSERT_NE(target, nullptr) << field.response_field;
    EXPECT_EQ(target->cpp_type(),
              google::protobuf::FieldDescriptor::CPPTYPE_UINT64)
        << field.response_field;
  }
}

TEST(StatsResponseTest, FillsEachCounterAndSumsTheRejections) {
  PageStats stats;
  stats.stored_pages = 10;
  stats.pool_pages = 4;
  stats.same_filled_pages = 2;
  stats.lz4_pages = 5;
  stats.raw_pages = 1;
  stats.compressed_bytes = 7000;
  stats.evicted_pages = 3;
  stats.reclaimed_pool_pages = 2;
  stats.rejected_puts_limit = 6;
  stats.rejected_puts_invalid = 1;
  stats.tenants = 1;
  v1::StatsResponse response;
  FillStatsResponse(stats, &response);
  EXPECT_EQ(response.stored_pages(), 10u);
  EXPECT_EQ(response.pool_pages(), 4u);
  EXPECT_DOUBLE_EQ(response.density(), 1.5);
  EXPECT_EQ(response.same_filled_pages(), 2u);
  EXPECT_EQ(response.raw_pages(), 1u);
  EXPECT_EQ(response.compressed_bytes(), 7000u);
  EXPECT_EQ(response.evicted_pages(), 3u);
  EXPECT_EQ(response.reclaimed_pool_pages(), 2u);
  EXPECT_EQ(response.rejected_puts(), 7u);
  EXPECT_EQ(response.tenants(), 1u);
}

TEST(PageStatsTest, SumsEveryCounter) {
  PageStats a, b;
  uint64_t value = 1;
  for (const PageStatField& field : kPageStatFields) {
    a.*field.member = value;
    b.*field.member = 100 * value++;
  }
  a += b;
  value = 1;
  for (const PageStatField& field : kPageStatFields) {
    EXPECT_EQ(a.*field.member, 101 * value++);
  }
}

}  // namespace
}  // namespace zpaged
