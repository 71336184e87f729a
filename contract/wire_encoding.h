// The one place a PageEncoding crosses to and from the proto's Encoding.

#ifndef ZPAGED_CONTRACT_WIRE_ENCODING_H_
#define ZPAGED_CONTRACT_WIRE_ENCODING_H_

#include "absl/status/statusor.h"
#include "contract/page_encoding.h"
#include "zpaged/v1/page_store.pb.h"

namespace zpaged {

v1::Encoding ToWireEncoding(PageEncoding encoding);

// INTERNAL for ENCODING_UNSPECIFIED or a number this build does not know
// (a newer server's).
absl::StatusOr<PageEncoding> FromWireEncoding(v1::Encoding encoding);

// The set a request's `accept` names; numbers this build does not know (a
// newer client's) are left out.
PageEncodingSet FromWireAccept(
    const google::protobuf::RepeatedField<int>& accept);

// Names every encoding of `accept` in `field`.
void ToWireAccept(PageEncodingSet accept,
                  google::protobuf::RepeatedField<int>* field);

}  // namespace zpaged

#endif  // ZPAGED_CONTRACT_WIRE_ENCODING_H_
