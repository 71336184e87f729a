// The tests keep pages as (key, bytes) pairs; these adapt them to
// PageClient's many-page calls.

#ifndef ZPAGED_TESTS_TESTING_MANY_PAGES_H_
#define ZPAGED_TESTS_TESTING_MANY_PAGES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/lib/page_client.h"
#include "contract/page.h"

namespace zpaged {

// PutMany of `pages`, as views of the pairs' strings.
inline absl::StatusOr<std::vector<absl::StatusOr<PutReply>>> PutPairs(
    PageClient& client, absl::string_view tenant,
    const std::vector<std::pair<uint64_t, std::string>>& pages) {
  std::vector<KeyedPage> keyed;
  keyed.reserve(pages.size());
  for (const auto& [key, page] : pages) keyed.push_back({key, page});
  return client.PutMany(tenant, keyed);
}

// GetMany of `keys`, each answer its page or its status.
inline absl::StatusOr<std::vector<absl::StatusOr<std::string>>> GetPages(
    PageClient& client, absl::string_view tenant,
    const std::vector<uint64_t>& keys) {
  std::vector<std::string> pages(keys.size(), std::string(kPageSize, '\0'));
  std::vector<uint8_t*> outs;
  outs.reserve(keys.size());
  for (std::string& page : pages) {
    outs.push_back(reinterpret_cast<uint8_t*>(page.data()));
  }
  absl::StatusOr<std::vector<absl::Status>> got =
      client.GetMany(tenant, keys, outs);
  if (!got.ok()) return got.status();
  std::vector<absl::StatusOr<std::string>> answers;
  answers.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if ((*got)[i].ok()) {
      answers.push_back(std::move(pages[i]));
    } else {
      answers.push_back((*got)[i]);
    }
  }
  return answers;
}

}  // namespace zpaged

#endif  // ZPAGED_TESTS_TESTING_MANY_PAGES_H_
