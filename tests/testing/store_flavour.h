// Pool driver × compressor as a GoogleTest parameter, for the suites that
// run once per way of storing pages: INSTANTIATE_TEST_SUITE_P(Flavours,
// SomeTest, AllStoreFlavours(), StoreFlavourName).

#ifndef ZPAGED_TESTS_TESTING_STORE_FLAVOUR_H_
#define ZPAGED_TESTS_TESTING_STORE_FLAVOUR_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/codec/page_codec.h"
#include "server/core/zpool.h"
#include "server/store/page_store.h"

namespace zpaged {

struct StoreFlavour {
  absl::string_view pool_driver;
  PageCompressor compressor;

  void ApplyTo(StoreOptions& store) const {
    store.pool_driver = std::string(pool_driver);
    store.codec.compressor = compressor;
  }
  std::string Name() const {
    return absl::StrCat(pool_driver, "_", PageCompressorName(compressor));
  }
};

// Every driver with every compressor.
inline auto AllStoreFlavours() {
  std::vector<StoreFlavour> flavours;
  for (absl::string_view driver : kZpoolDrivers) {
    for (PageCompressor compressor :
         {PageCompressor::kLz4, PageCompressor::kZstd}) {
      flavours.push_back({driver, compressor});
    }
  }
  return ::testing::ValuesIn(flavours);
}

inline std::string StoreFlavourName(
    const ::testing::TestParamInfo<StoreFlavour>& info) {
  return info.param.Name();
}

// GoogleTest prints the parameter by its name.
inline void PrintTo(const StoreFlavour& flavour, std::ostream* out) {
  *out << flavour.Name();
}

}  // namespace zpaged

#endif  // ZPAGED_TESTS_TESTING_STORE_FLAVOUR_H_
