// Fuzzes the service's request handling below gRPC: the input is a sequence
// of framed requests — [method byte][16-bit length][serialized request] —
// each parsed as the protobuf message of that method and applied to a
// PageStore the way the RPC layer does. Whatever arrives, the store answers
// with a status and keeps its promises: what a Put stored, a Get returns.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <optional>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "contract/batch.h"
#include "contract/page.h"
#include "contract/wire_encoding.h"
#include "server/codec/page_codec.h"
#include "server/core/mutex.h"
#include "server/core/notification.h"
#include "server/store/page_store.h"
#include "zpaged/v1/page_store.pb.h"

namespace {

// Takes every evicted page and acks it from a thread of its own, like a
// watcher that always acks.
class AcceptingSink : public zpaged::EvictionSink {
 public:
  AcceptingSink() : acker_([this] { Run(); }) {}
  ~AcceptingSink() override {
    {
      zpaged::MutexLock lock(&mu_);
      stopping_ = true;
      work_.SignalAll();
    }
    acker_.join();
  }

  bool CanAccept(absl::string_view) override { return true; }
  absl::Status Deliver(absl::string_view, uint64_t, zpaged::PageBytes,
                       zpaged::DeliveryDone done) override {
    zpaged::MutexLock lock(&mu_);
    queue_.push_back(std::move(done));
    work_.SignalAll();
    return absl::OkStatus();
  }

 private:
  void Run() {
    zpaged::MutexLock lock(&mu_);
    for (;;) {
      while (!stopping_ && queue_.empty()) work_.Wait(&mu_);
      if (queue_.empty()) return;
      zpaged::DeliveryDone done = std::move(queue_.front());
      queue_.pop_front();
      mu_.Unlock();
      std::move(done)(zpaged::DeliveryOutcome::kAcked);
      mu_.Lock();
    }
  }

  zpaged::Mutex mu_;
  zpaged::CondVar work_;
  bool stopping_ = false;
  std::deque<zpaged::DeliveryDone> queue_;
  std::thread acker_;
};

absl::Span<const uint8_t> Bytes(absl::string_view s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// The page a request carries, whole or encoded as `encoding` (a v1 number)
// names; nullopt for a number the server does not know (it refuses those
// before the store).
std::optional<zpaged::IncomingPage> IncomingPageOf(int encoding,
                                                   absl::string_view data) {
  if (encoding == zpaged::v1::ENCODING_UNSPECIFIED) {
    return zpaged::IncomingPage(Bytes(data));
  }
  absl::StatusOr<zpaged::PageEncoding> named =
      zpaged::FromWireEncoding(static_cast<zpaged::v1::Encoding>(encoding));
  if (!named.ok()) return std::nullopt;
  return zpaged::IncomingPage::Encoded(*named, Bytes(data));
}

// The whole page `page` stands for, or "" if it is not one (the store must
// have refused it).
std::string Expanded(const zpaged::IncomingPage& page) {
  if (!page.encoding.has_value()) {
    return page.bytes.size() == zpaged::kPageSize
               ? std::string(reinterpret_cast<const char*>(page.bytes.data()),
                             page.bytes.size())
               : "";
  }
  std::string whole(zpaged::kPageSize, '\0');
  const absl::Status expanded = zpaged::ExpandEncodedPage(
      *page.encoding, page.bytes,
      absl::MakeSpan(reinterpret_cast<uint8_t*>(whole.data()), whole.size()));
  return expanded.ok() ? whole : "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  AcceptingSink sink;
  zpaged::PageStore store(
      zpaged::StoreOptions{
          .tenant_max_bytes = 16 * zpaged::kPageSize,
          .max_memory_bytes = zpaged::PageStore::MemoryFor(4, 32, 256),
          .max_tenants = 4},
      &sink);
  // What each (tenant, key) must hold, if anything: the store may evict
  // (the sink acks), so absence is allowed; different bytes are not.
  absl::flat_hash_map<std::pair<std::string, uint64_t>, std::string> model;
  // Puts one page as the RPC layer does, and what it stored into the model.
  auto put = [&](const std::string& tenant, uint64_t key, int encoding,
                 absl::string_view data) {
    std::optional<zpaged::IncomingPage> page = IncomingPageOf(encoding, data);
    if (!page.has_value()) return;
    if (!store.PutAndWait(tenant, key, *page).ok()) return;
    const std::string whole = Expanded(*page);
    if (whole.empty()) std::abort();  // stored a page that is not one
    model[{tenant, key}] = whole;
  };
  // Reads one page as stored in `accept`; what comes back must be the
  // model's page once expanded, or NOT_FOUND / INVALID_ARGUMENT.
  std::string out(zpaged::kPageSize, '\0');
  auto check_get = [&](const std::string& tenant, uint64_t key,
                       const google::protobuf::RepeatedField<int>& accept) {
    absl::StatusOr<zpaged::StoredPage> got = store.Get(
        tenant, key,
        absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()),
        zpaged::FromWireAccept(accept));
    if (!got.ok()) {
      if (!absl::IsNotFound(got.status()) &&
          !absl::IsInvalidArgument(got.status())) {
        std::abort();
      }
      return;
    }
    if (got->encoding != zpaged::PageEncoding::kRaw &&
        !zpaged::FromWireAccept(accept).Contains(got->encoding)) {
      std::abort();  // an encoding the client did not accept
    }
    const std::string whole = Expanded(zpaged::IncomingPage::Encoded(
        got->encoding, Bytes(absl::string_view(out).substr(0, got->bytes))));
    auto it = model.find({tenant, key});
    if (it == model.end() || it->second != whole) {
      std::abort();  // a page that was never put, or other bytes
    }
  };

  size_t at = 0;
  while (at + 3 <= size) {
    const uint8_t method = data[at] % 7;
    const size_t length =
        std::min<size_t>(data[at + 1] | data[at + 2] << 8, size - at - 3);
    const uint8_t* body = data + at + 3;
    at += 3 + length;
    switch (method) {
      case 0: {
        zpaged::v1::PutRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        put(r.tenant(), r.key(), r.encoding(), r.data());
        break;
      }
      case 1: {
        zpaged::v1::GetRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        check_get(r.tenant(), r.key(), r.accept());
        break;
      }
      case 2: {
        zpaged::v1::DeleteRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        if (store.Delete(r.tenant(), r.key()).ok()) {
          model.erase({r.tenant(), r.key()});
        }
        break;
      }
      case 3: {
        zpaged::v1::ReclaimRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        zpaged::Notification finished;
        store.Reclaim(
            r.tenant(), r.pages() % 64,
            [&](absl::StatusOr<zpaged::ReclaimResult>) { finished.Notify(); });
        finished.WaitForNotification();
        break;
      }
      case 5: {  // PutBatch, item by item as the RPC layer applies it
        zpaged::v1::PutBatchRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        const bool encoded = r.encodings_size() > 0 || r.sizes_size() > 0;
        if (!zpaged::ValidateBatch(
                 r.tenant(), r.keys_size(),
                 encoded ? std::nullopt
                         : std::optional<size_t>(r.pages().size()))
                 .ok() ||
            (encoded &&
             !zpaged::ValidateEncodedBatch(
                  r.keys_size(), r.encodings_size(),
                  absl::MakeConstSpan(r.sizes().data(), r.sizes_size()),
                  r.pages().size())
                  .ok())) {
          break;
        }
        size_t offset = 0;
        for (int i = 0; i < r.keys_size(); ++i) {
          const size_t bytes = encoded ? r.sizes(i) : zpaged::kPageSize;
          put(r.tenant(), r.keys(i),
              encoded ? r.encodings(i) : zpaged::v1::ENCODING_UNSPECIFIED,
              absl::string_view(r.pages()).substr(offset, bytes));
          offset += bytes;
        }
        break;
      }
      case 6: {  // GetBatch: every page that comes back is the model's
        zpaged::v1::GetBatchRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        if (!zpaged::ValidateBatch(r.tenant(), r.keys_size(), std::nullopt)
                 .ok()) {
          break;
        }
        for (int i = 0; i < r.keys_size(); ++i) {
          check_get(r.tenant(), r.keys(i), r.accept());
        }
        break;
      }
      case 4: {
        zpaged::v1::StatsRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        auto stats = store.Stats(r.tenant());
        if (stats.ok() && stats->pool_pages > 0 &&
            (stats->density() < 1.0 || stats->density() > 2.0)) {
          std::abort();
        }
        break;
      }
    }
  }
  return 0;
}
