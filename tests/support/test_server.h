// TestServer: the whole zpaged service in this process, on a loopback port
// the kernel picks, for tests that talk to it through the client library.

#ifndef ZPAGED_TESTS_SUPPORT_TEST_SERVER_H_
#define ZPAGED_TESTS_SUPPORT_TEST_SERVER_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "client/zpaged_client.h"
#include "grpcpp/server.h"
#include "server/rpc/blocking_executor.h"
#include "server/rpc/eviction_hub.h"
#include "server/rpc/page_store_service.h"
#include "server/store/page_store.h"

namespace zpaged {

struct TestServerOptions {
  StoreOptions store;
  absl::Duration ack_deadline = absl::Milliseconds(300);
  int reclaim_threads = 2;
};

class TestServer {
 public:
  explicit TestServer(const TestServerOptions& options = {});
  ~TestServer();  // shuts down as main() does

  const std::string& address() const { return address_; }
  std::unique_ptr<Client> NewClient() const;
  EvictionHub& hub() { return hub_; }

 private:
  EvictionHub hub_;
  PageStore store_;
  BlockingExecutor executor_;
  PageStoreService service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace zpaged

#endif  // ZPAGED_TESTS_SUPPORT_TEST_SERVER_H_
