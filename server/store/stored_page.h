// StoredPage: what a Get wrote into its caller's buffer.

#ifndef ZPAGED_SERVER_STORE_STORED_PAGE_H_
#define ZPAGED_SERVER_STORE_STORED_PAGE_H_

#include <cstddef>

#include "contract/page_encoding.h"

namespace zpaged {

// kRaw and kPageSize bytes for a whole page; otherwise the page as stored
// (ExpandEncodedPage's forms): its word, or its compressed bytes.
struct StoredPage {
  PageEncoding encoding;
  size_t bytes;
};

}  // namespace zpaged

#endif  // ZPAGED_SERVER_STORE_STORED_PAGE_H_
