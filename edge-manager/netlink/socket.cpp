#include "edge-manager/netlink/socket.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>

namespace segwan::netlink {

Result<std::unique_ptr<NetlinkSocket>> NetlinkSocket::Open() {
  nl_sock* sk = nl_socket_alloc();
  if (!sk) return Error{"cannot allocate a netlink socket", "", ENOMEM};
  if (int err = nl_connect(sk, NETLINK_ROUTE); err < 0) {
    nl_socket_free(sk);
    return Error{std::string("cannot open rtnetlink: ") + nl_geterror(err), "", -err};
  }
  const int fd = nl_socket_get_fd(sk);
  int one = 1;
  // Ask for the kernel's error text, and for acks without a copy of our request.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  nl_socket_set_buffer_size(sk, 1 << 20, 1 << 20);
  return std::unique_ptr<NetlinkSocket>(new NetlinkSocket(sk));
}

NetlinkSocket::~NetlinkSocket() { nl_socket_free(sk_); }

static std::string ExtAckText(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - NLMSG_HDRLEN;
  const auto* base = reinterpret_cast<const uint8_t*>(h);
  while (off + sizeof(nlattr) <= h->nlmsg_len) {
    const auto* a = reinterpret_cast<const nlattr*>(base + off);
    if (a->nla_len < sizeof(nlattr) || off + a->nla_len > h->nlmsg_len) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* text = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
      return std::string(text, strnlen(text, a->nla_len - NLA_HDRLEN));
    }
    off += NLA_ALIGN(a->nla_len);
  }
  return "";
}

Status NetlinkSocket::Receive(uint32_t seq, const std::string& what,
                              const std::function<void(const nlmsghdr*)>* each) {
  for (;;) {
    sockaddr_nl peer{};
    unsigned char* buf = nullptr;
    const int n = nl_recv(sk_, &peer, &buf, nullptr);
    if (n <= 0) {
      std::free(buf);
      return Error{what + ": netlink receive failed: " + nl_geterror(n), "", n < 0 ? -n : EIO};
    }
    std::unique_ptr<unsigned char, decltype(&std::free)> hold(buf, &std::free);
    int len = n;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
      if (h->nlmsg_seq != seq) continue;  // a late answer to something else
      if (h->nlmsg_type == NLMSG_DONE) return Status::Ok();
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        if (err->error == 0) return Status::Ok();
        const int code = -err->error;
        std::string message = what + ": " + std::strerror(code);
        if (auto ext = ExtAckText(h); !ext.empty()) message += " (" + ext + ")";
        return Error{message, "", code};
      }
      if (each) (*each)(h);
      if (!(h->nlmsg_flags & NLM_F_MULTI)) return Status::Ok();
    }
  }
}

Status NetlinkSocket::Request(const NlMsg& msg, const std::string& what) {
  const int sent = nl_send_auto(sk_, msg.get());
  if (sent < 0) return Error{what + ": netlink send failed: " + nl_geterror(sent), "", -sent};
  return Receive(nlmsg_hdr(msg.get())->nlmsg_seq, what, nullptr);
}

Status NetlinkSocket::Dump(int type, int family, const std::function<void(const nlmsghdr*)>& each) {
  NlMsg m(nlmsg_alloc_simple(type, NLM_F_REQUEST | NLM_F_DUMP));
  // Every dump request starts with a one-byte family; rtgenmsg is the smallest header the
  // kernel accepts for all of RTM_GETLINK/ADDR/ROUTE/RULE.
  rtgenmsg g{};
  g.rtgen_family = static_cast<unsigned char>(family);
  if (type == RTM_GETLINK) {
    ifinfomsg ifi{};
    ifi.ifi_family = static_cast<unsigned char>(family);
    nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO);
  } else if (type == RTM_GETROUTE) {
    rtmsg r{};
    r.rtm_family = static_cast<unsigned char>(family);
    nlmsg_append(m.get(), &r, sizeof r, NLMSG_ALIGNTO);
  } else {
    nlmsg_append(m.get(), &g, sizeof g, NLMSG_ALIGNTO);
  }
  const int sent = nl_send_auto(sk_, m.get());
  if (sent < 0) return Error{std::string("netlink dump send failed: ") + nl_geterror(sent), "", -sent};
  return Receive(nlmsg_hdr(m.get())->nlmsg_seq, "dump", &each);
}

}  // namespace segwan::netlink
