// PageBytes: an evicted page on its way to a watcher, as the pool keeps it
// (its word, its compressed bytes) or whole, so that a watcher that decodes
// pages itself gets them without the server decoding them first.

#ifndef ZPAGED_SERVER_EVICT_PAGE_BYTES_H_
#define ZPAGED_SERVER_EVICT_PAGE_BYTES_H_

#include <cstdint>
#include <type_traits>

#include "absl/types/span.h"
#include "contract/page_encoding.h"

namespace zpaged {

struct PageBytes {
  // A whole page, kPageSize bytes (kRaw). Implicit, from anything that is a
  // span of bytes, so that a page's bytes are a delivery's page.
  template <typename Bytes, typename = std::enable_if_t<std::is_convertible_v<
                                const Bytes&, absl::Span<const uint8_t>>>>
  PageBytes(const Bytes& whole)  // NOLINT(runtime/explicit)
      : bytes(whole) {}
  // A page kept as `encoding` (ExpandEncodedPage's forms).
  PageBytes(PageEncoding encoding, absl::Span<const uint8_t> bytes)
      : encoding(encoding), bytes(bytes) {}

  PageEncoding encoding = PageEncoding::kRaw;
  absl::Span<const uint8_t> bytes;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_EVICT_PAGE_BYTES_H_
