#include "server/config/byte_size.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace zpaged {
namespace {

constexpr struct {
  const char* suffix;
  int shift;
} kUnits[] = {{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}};

}  // namespace

bool AbslParseFlag(absl::string_view text, ByteSize* size, std::string* error) {
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  absl::string_view digits = upper;
  if (absl::EndsWith(digits, "IB")) digits.remove_suffix(2);
  int shift = 0;
  for (const auto& unit : kUnits) {
    if (absl::EndsWith(digits, unit.suffix)) {
      digits.remove_suffix(1);
      shift = unit.shift;
      break;
    }
  }
  uint64_t value;
  if (digits.empty() || !absl::SimpleAtoi(digits, &value) ||
      (upper.size() > digits.size() && shift == 0)) {
    *error = absl::StrCat("'", text,
                          "' is not a size: write bytes, or a number with "
                          "K, M, G or T");
    return false;
  }
  if (shift > 0 && value > (std::numeric_limits<uint64_t>::max() >> shift)) {
    *error = absl::StrCat("'", text, "' is too large");
    return false;
  }
  size->bytes = value << shift;
  return true;
}

std::string AbslUnparseFlag(ByteSize size) {
  for (const auto& unit : kUnits) {
    const uint64_t scale = uint64_t{1} << unit.shift;
    if (size.bytes != 0 && size.bytes % scale == 0) {
      return absl::StrCat(size.bytes / scale, unit.suffix);
    }
  }
  return absl::StrCat(size.bytes);
}

uint64_t SizeOrPercent::Of(uint64_t limit) const {
  if (percent < 0) return std::min(bytes, limit);
  return static_cast<uint64_t>(static_cast<long double>(limit) * percent /
                               100.0L);
}

bool AbslParseFlag(absl::string_view text, SizeOrPercent* size,
                   std::string* error) {
  absl::string_view stripped = absl::StripAsciiWhitespace(text);
  if (!absl::ConsumeSuffix(&stripped, "%")) {
    ByteSize bytes;
    if (!AbslParseFlag(text, &bytes, error)) return false;
    *size = SizeOrPercent{bytes.bytes, -1};
    return true;
  }
  double percent;
  if (!absl::SimpleAtod(stripped, &percent) || !(percent >= 0) ||
      percent > 100) {
    *error = absl::StrCat("'", text, "' is not a percentage from 0% to 100%");
    return false;
  }
  *size = SizeOrPercent{0, percent};
  return true;
}

std::string AbslUnparseFlag(const SizeOrPercent& size) {
  if (size.percent >= 0) return absl::StrCat(size.percent, "%");
  return AbslUnparseFlag(ByteSize{size.bytes});
}

}  // namespace zpaged
