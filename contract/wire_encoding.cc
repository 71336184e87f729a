#include "contract/wire_encoding.h"

#include "absl/strings/str_cat.h"

namespace zpaged {

v1::Encoding ToWireEncoding(PageEncoding encoding) {
  switch (encoding) {
    case PageEncoding::kSameFilled:
      return v1::SAME_FILLED;
    case PageEncoding::kLz4:
      return v1::LZ4;
    case PageEncoding::kRaw:
      return v1::RAW;
    case PageEncoding::kZstd:
      return v1::ZSTD;
  }
  return v1::ENCODING_UNSPECIFIED;
}

absl::StatusOr<PageEncoding> FromWireEncoding(v1::Encoding encoding) {
  switch (encoding) {
    case v1::SAME_FILLED:
      return PageEncoding::kSameFilled;
    case v1::LZ4:
      return PageEncoding::kLz4;
    case v1::RAW:
      return PageEncoding::kRaw;
    case v1::ZSTD:
      return PageEncoding::kZstd;
    default:
      return absl::InternalError(absl::StrCat(
          "the server named page encoding ", static_cast<int>(encoding),
          ", which this client does not know"));
  }
}

PageEncodingSet FromWireAccept(
    const google::protobuf::RepeatedField<int>& accept) {
  PageEncodingSet set;
  for (int number : accept) {
    absl::StatusOr<PageEncoding> encoding =
        FromWireEncoding(static_cast<v1::Encoding>(number));
    if (encoding.ok()) set.Add(*encoding);
  }
  return set;
}

void ToWireAccept(PageEncodingSet accept,
                  google::protobuf::RepeatedField<int>* field) {
  for (PageEncoding encoding : {PageEncoding::kSameFilled, PageEncoding::kLz4,
                                PageEncoding::kRaw, PageEncoding::kZstd}) {
    if (accept.Contains(encoding)) field->Add(ToWireEncoding(encoding));
  }
}

}  // namespace zpaged
