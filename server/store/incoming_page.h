// IncomingPage: a page as a Put brings it to the store, whole or as the
// client encoded it (compression at the edge).

#ifndef ZPAGED_SERVER_STORE_INCOMING_PAGE_H_
#define ZPAGED_SERVER_STORE_INCOMING_PAGE_H_

#include <cstdint>
#include <optional>
#include <type_traits>

#include "absl/types/span.h"
#include "contract/page_encoding.h"

namespace zpaged {

struct IncomingPage {
  // A whole page: kPageSize bytes, which the store classifies and
  // compresses itself. Implicit, from anything that is a span of bytes, so
  // that a page's bytes are a Put's page.
  template <typename Bytes, typename = std::enable_if_t<std::is_convertible_v<
                                const Bytes&, absl::Span<const uint8_t>>>>
  IncomingPage(const Bytes& whole)  // NOLINT(runtime/explicit)
      : bytes(whole) {}

  // A page the client encoded (codec/page_codec.h, ExpandEncodedPage, says
  // what each encoding's bytes are). The store checks that it decodes to
  // exactly one page and keeps the client's bytes.
  static IncomingPage Encoded(PageEncoding encoding,
                              absl::Span<const uint8_t> bytes) {
    IncomingPage page(bytes);
    page.encoding = encoding;
    return page;
  }

  absl::Span<const uint8_t> bytes;
  // Set for a page the client encoded; unset for a whole page.
  std::optional<PageEncoding> encoding;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_INCOMING_PAGE_H_
