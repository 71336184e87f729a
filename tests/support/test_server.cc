#include "tests/support/test_server.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace zpaged {

TestServer::TestServer(const TestServerOptions& options)
    : hub_(options.ack_deadline),
      store_(options.store, &hub_),
      executor_(options.reclaim_threads),
      service_(&store_, &hub_, &executor_) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) std::abort();
  address_ = absl::StrCat("127.0.0.1:", port);
}

TestServer::~TestServer() {
  hub_.Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_->Wait();
}

std::unique_ptr<Client> TestServer::NewClient() const {
  return Client::Connect(address_);
}

}  // namespace zpaged
