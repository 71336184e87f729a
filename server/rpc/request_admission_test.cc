#include "server/rpc/request_admission.h"

#include <utility>

#include "gtest/gtest.h"

namespace zpaged {
namespace {

TEST(RequestAdmissionTest, EachTenantHasItsShareAndAllHaveTheTotal) {
  RequestAdmission admission({.total_bytes = 100, .tenant_bytes = 40});
  absl::StatusOr<RequestAdmission::Ticket> a1 = admission.Admit("a", 30);
  ASSERT_TRUE(a1.ok());
  const absl::Status a_more = admission.Admit("a", 20).status();
  EXPECT_TRUE(absl::IsResourceExhausted(a_more)) << a_more;
  EXPECT_NE(a_more.message().find("tenant 'a'"), absl::string_view::npos);
  absl::StatusOr<RequestAdmission::Ticket> b = admission.Admit("b", 40);
  ASSERT_TRUE(b.ok());
  absl::StatusOr<RequestAdmission::Ticket> c = admission.Admit("c", 30);
  ASSERT_TRUE(c.ok());
  // 100 in all: d, though within its own share, waits for the others.
  EXPECT_TRUE(absl::IsResourceExhausted(admission.Admit("d", 10).status()));
  *a1 = RequestAdmission::Ticket();            // a's call finished
  EXPECT_TRUE(admission.Admit("d", 10).ok());  // released at once
  EXPECT_TRUE(admission.Admit("a", 30).ok());  // 100 in all again
}

TEST(RequestAdmissionTest, AMovedTicketReleasesOnce) {
  RequestAdmission admission({.total_bytes = 10, .tenant_bytes = 10});
  {
    absl::StatusOr<RequestAdmission::Ticket> held = admission.Admit("a", 10);
    ASSERT_TRUE(held.ok());
    RequestAdmission::Ticket moved = *std::move(held);
    EXPECT_FALSE(admission.Admit("a", 1).ok());
  }
  EXPECT_TRUE(admission.Admit("a", 10).ok());
}

}  // namespace
}  // namespace zpaged
