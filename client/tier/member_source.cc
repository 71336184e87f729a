#include "client/tier/member_source.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace zpaged {

absl::StatusOr<std::vector<std::string>> ReadMembersFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::vector<std::string> servers;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view entry = absl::StripAsciiWhitespace(line);
    if (entry.empty() || entry.front() == '#') continue;
    servers.emplace_back(entry);
  }
  if (servers.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " lists no server"));
  }
  return servers;
}

absl::StatusOr<std::vector<std::string>> ResolveMembers(
    const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns:", host_port, " is not dns:HOST:PORT"));
  }
  const std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
      error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ": ", gai_strerror(error)));
  }
  std::set<std::string> servers;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN] = {};
    const void* where =
        a->ai_family == AF_INET6
            ? static_cast<const void*>(
                  &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr);
    if (inet_ntop(a->ai_family, where, ip, sizeof(ip)) == nullptr) continue;
    servers.insert(a->ai_family == AF_INET6 ? absl::StrCat("[", ip, "]:", port)
                                            : absl::StrCat(ip, ":", port));
  }
  freeaddrinfo(found);
  if (servers.empty()) {
    return absl::UnavailableError(absl::StrCat(host, " has no address"));
  }
  return std::vector<std::string>(servers.begin(), servers.end());
}

MemberReconciler::MemberReconciler(TierClient* tier, ClientOptions client,
                                   TierOptions options,
                                   std::map<std::string, std::string> known)
    : tier_(tier),
      client_(std::move(client)),
      options_(std::move(options)),
      known_(std::move(known)) {}

std::string MemberReconciler::Reconcile(
    const std::vector<std::string>& servers) {
  std::vector<std::string> said;
  const std::set<std::string> wanted(servers.begin(), servers.end());
  for (const std::string& entry : servers) {
    if (known_.count(entry)) continue;
    absl::StatusOr<TierMember> member =
        TierClient::ConnectMember(entry, client_, options_);
    if (!member.ok()) {
      said.push_back(absl::StrCat("cannot add ", entry,
                                  " yet: ", member.status().message()));
      continue;
    }
    const std::string name = member->name;
    if (absl::Status added = tier_->AddMember(*std::move(member));
        !added.ok()) {
      said.push_back(absl::StrCat("cannot add ", entry, ": ", added.message()));
      continue;
    }
    known_[entry] = name;
    said.push_back(absl::StrCat("added ", name, " (", entry, ")"));
  }
  for (auto it = known_.begin(); it != known_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    // A name that another entry now stands for (the server moved) stays.
    const std::string name = it->second;
    it = known_.erase(it);
    const bool still_listed =
        std::any_of(known_.begin(), known_.end(),
                    [&](const auto& other) { return other.second == name; });
    if (still_listed) continue;
    if (absl::Status removed = tier_->RemoveMember(name); removed.ok()) {
      said.push_back(absl::StrCat("removed ", name));
    } else {
      said.push_back(
          absl::StrCat("cannot remove ", name, ": ", removed.message()));
    }
  }
  return absl::StrJoin(said, "; ");
}

}  // namespace zpaged
