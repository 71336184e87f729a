// Fuzzes the service's request handling below gRPC: the input is a sequence
// of framed requests — [method byte][16-bit length][serialized request] —
// each parsed as the protobuf message of that method and applied to a
// PageStore the way the RPC layer does. Whatever arrives, the store answers
// with a status and keeps its promises: what a Put stored, a Get returns.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "contract/batch.h"
#include "contract/page.h"
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
  absl::Status Deliver(absl::string_view, uint64_t, absl::Span<const uint8_t>,
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

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
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
  std::string page(zpaged::kPageSize, '\0');

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
        auto put = store.PutAndWait(r.tenant(), r.key(), Bytes(r.data()));
        if (put.ok()) {
          if (r.data().size() != zpaged::kPageSize) std::abort();
          model[{r.tenant(), r.key()}] = r.data();
        }
        break;
      }
      case 1: {
        zpaged::v1::GetRequest r;
        if (!r.ParseFromArray(body, static_cast<int>(length))) break;
        const absl::Status got =
            store.Get(r.tenant(), r.key(),
                      absl::MakeSpan(reinterpret_cast<uint8_t*>(page.data()),
                                     page.size()));
        auto it = model.find({r.tenant(), r.key()});
        if (got.ok() && (it == model.end() || it->second != page)) {
          std::abort();  // a page that was never put, or other bytes
        }
        if (!got.ok() && !absl::IsNotFound(got) &&
            !absl::IsInvalidArgument(got)) {
          std::abort();
        }
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
        if (!zpaged::ValidateBatch(r.tenant(), r.keys_size(), r.pages().size())
                 .ok()) {
          break;
        }
        for (int i = 0; i < r.keys_size(); ++i) {
          const std::string one =
              r.pages().substr(i * zpaged::kPageSize, zpaged::kPageSize);
          if (store.PutAndWait(r.tenant(), r.keys(i), Bytes(one)).ok()) {
            model[{r.tenant(), r.keys(i)}] = one;
          }
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
          const absl::Status got =
              store.Get(r.tenant(), r.keys(i),
                        absl::MakeSpan(reinterpret_cast<uint8_t*>(page.data()),
                                       page.size()));
          auto it = model.find({r.tenant(), r.keys(i)});
          if (got.ok() && (it == model.end() || it->second != page)) {
            std::abort();
          }
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
