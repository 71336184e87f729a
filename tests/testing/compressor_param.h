// The compressors as a GoogleTest parameter, for the suites that run once
// per compressor: INSTANTIATE_TEST_SUITE_P(Compressors, SomeTest,
// AllCompressors(), CompressorName).

#ifndef ZPAGED_TESTS_TESTING_COMPRESSOR_PARAM_H_
#define ZPAGED_TESTS_TESTING_COMPRESSOR_PARAM_H_

#include <ostream>
#include <string>

#include "gtest/gtest.h"
#include "server/codec/page_codec.h"

namespace zpaged {

inline auto AllCompressors() {
  return ::testing::Values(PageCompressor::kLz4, PageCompressor::kZstd);
}

inline std::string CompressorName(
    const ::testing::TestParamInfo<PageCompressor>& info) {
  return PageCompressorName(info.param);
}

// GoogleTest prints the parameter by its name.
inline void PrintTo(PageCompressor compressor, std::ostream* out) {
  *out << PageCompressorName(compressor);
}

}  // namespace zpaged

#endif  // ZPAGED_TESTS_TESTING_COMPRESSOR_PARAM_H_
