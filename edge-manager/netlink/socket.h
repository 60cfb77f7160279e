#pragma once

#include <netlink/socket.h>

#include <functional>
#include <memory>
#include <string>

#include "edge-manager/netlink/encode.h"
#include "segwan/result.h"

namespace segwan::netlink {

// An rtnetlink socket (RAII). Errors carry the kernel's errno and, when it gives one, its
// extended-ack text ("Invalid argument (seg6local: ... )"), prefixed with what was being done.
class NetlinkSocket {
 public:
  static Result<std::unique_ptr<NetlinkSocket>> Open();
  ~NetlinkSocket();
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  // Sends one request and waits for its acknowledgement. `what` names the object for errors.
  Status Request(const NlMsg& msg, const std::string& what);
  // Dumps (RTM_GETROUTE, RTM_GETRULE, RTM_GETLINK, RTM_GETADDR) and calls `each` per message.
  Status Dump(int type, int family, const std::function<void(const nlmsghdr*)>& each);

 private:
  explicit NetlinkSocket(nl_sock* sk) : sk_(sk) {}
  Status Receive(uint32_t seq, const std::string& what,
                 const std::function<void(const nlmsghdr*)>* each);
  nl_sock* sk_;
};

}  // namespace segwan::netlink
