#include "contract/page_encoding.h"

namespace zpaged {

const char* PageEncodingName(PageEncoding encoding) {
  switch (encoding) {
    case PageEncoding::kSameFilled:
      return "same_filled";
    case PageEncoding::kLz4:
      return "lz4";
    case PageEncoding::kRaw:
      return "raw";
    case PageEncoding::kZstd:
      return "zstd";
  }
  return "unknown";
}

}  // namespace zpaged
