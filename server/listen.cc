#include "server/listen.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "server/config.h"

namespace sprocket {
namespace {

absl::StatusOr<UniqueFd> BindOne(const std::string& address) {
  absl::StatusOr<std::pair<std::string, int>> parsed = ParseListenAddress(address);
  if (!parsed.ok()) {
    return parsed.status();
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(parsed->second);
  if (int r = ::getaddrinfo(parsed->first.c_str(), port.c_str(), &hints, &found); r != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", address, ": ", ::gai_strerror(r)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
  UniqueFd fd(::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK, 0));
  if (!fd) {
    return absl::ErrnoToStatus(errno, absl::StrCat("socket for ", address));
  }
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (found->ai_family == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot listen on ", address, ": bind"));
  }
  if (::listen(fd.get(), SOMAXCONN) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot listen on ", address, ": listen"));
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::vector<UniqueFd>> BindListenSockets(const std::vector<std::string>& addresses) {
  std::vector<UniqueFd> out;
  for (const std::string& address : addresses) {
    absl::StatusOr<UniqueFd> fd = BindOne(address);
    if (!fd.ok()) {
      return fd.status();
    }
    out.push_back(*std::move(fd));
  }
  return out;
}

std::string SocketAddress(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return "?";
  }
  char host[NI_MAXHOST];
  char port[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  return addr.ss_family == AF_INET6 ? absl::StrCat("[", host, "]:", port)
                                    : absl::StrCat(host, ":", port);
}

}  // namespace sprocket
