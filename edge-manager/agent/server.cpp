#include "edge-manager/agent/server.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "edge-manager/agent/api_guard.h"
#include "edge-manager/agent/enrolment.h"
#include "edge-manager/agent/kernel_check.h"
#include "edge-manager/agent/registration.h"
#include "edge-manager/api/edge_service.h"
#include "edge-manager/loss/altmark.h"
#include "edge-manager/netlink/dataplane.h"
#include "edge-manager/slices/slice.h"
#include "segwan/cli.h"
#include "segwan/log.h"
#include "segwan/version.h"

namespace segwan::edge {

static std::vector<std::string> Capabilities(SliceMode mode, bool xdp, bool loss) {
  std::vector<std::string> caps{"seg6", mode == SliceMode::kVrf ? "vrf" : "table-mode", "stamp-userspace"};
  if (xdp) caps.push_back("bpf");
  if (loss) caps.push_back("loss");
  return caps;
}

// The largest request the API takes: a slice with many remotes fits well inside it.
constexpr int kMaxApiMessage = 4 << 20;

// Enrols with the controller until it works, with backoff; a stop signal ends the wait.
static Status EnrolUntilDone(const AgentConfig& c, const sigset_t& stop) {
  if (Enrolled(c.tls_dir, c.device_id)) return Status::Ok();
  if (!c.controller) {
    return FieldError("--controller", "is required to enrol: " + c.tls_dir + " holds no certificate for " + c.device_id +
                                          " (or run --insecure)");
  }
  auto backoff = std::chrono::milliseconds(500);
  for (size_t attempt = 0;; ++attempt) {
    // Several controllers: one leads and enrols, the others refuse; each is asked in turn.
    const auto& controller = c.controllers.empty() ? *c.controller : c.controllers[attempt % c.controllers.size()];
    auto st = Enrol({.device_id = c.device_id, .controller = controller.ToString(), .ca_file = c.ca_file,
                     .join_token_file = c.join_token_file, .tls_dir = c.tls_dir});
    if (st) return st;
    if (c.controllers.size() > 1 && (attempt + 1) % c.controllers.size() != 0) continue;  // the next, at once
    // A missing file is for the operator to fix: say so at once rather than retry.
    if (st.error().code == 0 && !st.error().field.empty()) return st;
    SEGWAN_LOG(kWarn, "enrolment") << st.error().message << "; trying again in " << backoff.count() << " ms";
    timespec ts{static_cast<time_t>(backoff.count() / 1000), static_cast<long>(backoff.count() % 1000) * 1'000'000};
    if (sigtimedwait(&stop, nullptr, &ts) > 0) return Error{"stopped before enrolment finished", "", 0};
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30'000));
  }
}

// The address of the first management interface that has one (global IPv6 first, then IPv4).
static Result<std::string> ManagementAddress(netlink::Dataplane& dp, const std::vector<std::string>& mgmt) {
  auto links = dp.Links();
  if (!links) return links.error();
  for (const auto& name : mgmt) {
    for (int family : {AF_INET6, AF_INET}) {
      for (const auto& l : *links) {
        if (l.name != name) continue;
        for (const auto& a : l.addresses) {
          if (a.address.family == family && !a.address.IsLinkLocal()) return a.address.ToString();
        }
      }
    }
  }
  return FieldError("--mgmt", "no address on the management interface(s) to listen on (or give --listen)");
}

// Picks the slice mode and checks the kernel has what it needs (kernel_check.h); in VRF mode,
// turns on net.vrf.strict_mode here, without which End.DT4 and End.DT46 are refused.
static Result<SliceMode> CheckKernel(const AgentConfig& c) {
  const KernelReport kernel = ProbeKernel();
  const SliceMode mode = ChooseSliceMode(c.slice_mode, kernel);
  SEGWAN_LOG(kInfo, "main") << "kernel " << kernel.release << ": slices in " << SliceModeName(mode) << " mode"
                            << (c.slice_mode == "auto" ? " (chosen from what the kernel has)" : "");
  const std::string missing = MissingFor(kernel, mode);
  if (!missing.empty()) {
    const std::string what = "this kernel cannot run slices in " + std::string(SliceModeName(mode)) +
                             " mode:" + missing + "\n(edge-manager --check-kernel lists all it needs)";
    if (!c.skip_kernel_check) return Error{what, "", 0};
    SEGWAN_LOG(kWarn, "main") << what << "; starting anyway (--skip-kernel-check)";
  }
  if (mode == SliceMode::kVrf) {
    if (auto st = EnableVrfStrictMode(); !st) return st.error();
  }
  return mode;
}

int RunAgent(const AgentConfig& given) {
  AgentConfig c = given;
  // Block the stop signals before any thread exists (the STAMP engine starts some), so every
  // thread inherits the mask and only the waiter below takes them: a SIGTERM then always
  // shuts down in order and the XDP programs are detached.
  const sigset_t stop = segwan::BlockStopSignals();
  // The kernel first: a missing feature is said plainly before anything is enrolled or changed.
  const auto mode = CheckKernel(c);
  if (!mode) {
    SEGWAN_LOG(kError, "main") << mode.error().ToString();
    return 2;
  }
  // Enrol before touching the router: an agent the controller refuses changes nothing here.
  if (!c.insecure) {
    if (auto st = EnrolUntilDone(c, stop); !st) {
      SEGWAN_LOG(kError, "main") << st.error().ToString();
      return 2;
    }
  }
  auto dp = netlink::OpenNetlinkDataplane();
  if (!dp) {
    SEGWAN_LOG(kError, "main") << dp.error().ToString();
    return 1;
  }
  if (c.listen_on_mgmt) {
    auto addr = ManagementAddress(**dp, c.mgmt_interfaces);
    if (!addr) {
      SEGWAN_LOG(kError, "main") << addr.error().ToString();
      return 2;
    }
    c.listen.host = *addr;
    if (c.advertise.empty()) c.advertise = c.listen.ToString();
  }
  SliceManager slices(dp->get(), *mode, c.sid_device);
  InterfaceRoles roles;
  for (const auto& n : c.wan_interfaces) roles[n] = "wan";
  for (const auto& n : c.lan_interfaces) roles[n] = "lan";
  for (const auto& n : c.mgmt_interfaces) roles[n] = "mgmt";
  slices.SetInterfaceRoles(roles);
  // The XDP reflector when this kernel takes it; it must outlive the engine that uses it.
  std::unique_ptr<stamp::XdpStamp> xdp;
  if (auto loaded = stamp::XdpStamp::Load()) {
    xdp = std::move(*loaded);
    xdp->SetTaiUtcOffset(stamp::TaiUtcOffset());
  } else {
    SEGWAN_LOG(kWarn, "main") << loaded.error().message << "; STAMP runs in user space only";
  }
  // T1 at TC egress for unauthenticated sender sessions, when the kernel takes the program.
  std::unique_ptr<stamp::EbpfSender> t1;
  if (auto loaded = stamp::EbpfSender::Load(stamp::TaiUtcOffset())) {
    t1 = std::move(*loaded);
    for (const auto& w : c.wan_interfaces) {
      if (auto st = t1->Attach(w); !st) SEGWAN_LOG(kWarn, "main") << st.error().message;
    }
  } else {
    SEGWAN_LOG(kWarn, "main") << loaded.error().message << "; senders take T1 in user space";
  }
  stamp::UserspaceEngine stamp_engine(stamp::kDefaultResultQueue, c.stamp_packet_ring);
  stamp_engine.UseEbpf(xdp.get());
  // On the WAN links from the start: sender sessions' replies are collected there even when
  // nobody called Init, and with no session the program passes everything at a bit test.
  if (auto st = stamp_engine.AttachXdp(c.wan_interfaces); !st) SEGWAN_LOG(kWarn, "main") << st.error().message;
  stamp_engine.UseEbpfSender(t1.get());
  EdgeService service(dp->get(), &slices, roles, c.state_dir, &stamp_engine);
  // Loss monitoring (alternate marking) at TC on the WAN interfaces. Counters are pinned on
  // the bpffs when there is one, so they survive a restart of the agent.
  std::unique_ptr<loss::AltmarkEngine> altmark;
  {
    const std::string pins = "/sys/fs/bpf/segwan/" + c.device_id;
    auto loaded = loss::AltmarkEngine::Load(pins);
    if (!loaded) {
      SEGWAN_LOG(kWarn, "main") << loaded.error().message << "; loss counters will not survive a restart";
      loaded = loss::AltmarkEngine::Load("");
    }
    if (loaded) {
      altmark = std::move(*loaded);
      for (const auto& w : c.wan_interfaces) {
        if (auto st = altmark->Attach(w); !st) SEGWAN_LOG(kWarn, "main") << st.error().message;
      }
      service.UseLoss(altmark.get());
    } else {
      SEGWAN_LOG(kWarn, "main") << loaded.error().message << "; no loss monitoring on this edge";
    }
  }
  if (auto n = service.RestoreSavedSlices(); n && *n > 0) {
    SEGWAN_LOG(kInfo, "main") << "restored " << *n << " slice(s) from " << c.state_dir;
  }

  // Mutual TLS unless --insecure: enrol first when this device holds no certificate yet.
  const TlsIdentity identity = IdentityIn(c.tls_dir);
  std::shared_ptr<grpc::ChannelCredentials> channel_creds = grpc::InsecureChannelCredentials();
  Result<std::shared_ptr<grpc::ServerCredentials>> creds = grpc::InsecureServerCredentials();
  auto fence = std::make_shared<LeaderFence>();  // several controllers: calls from an old leader are refused
  if (c.insecure) {
    SEGWAN_LOG(kWarn, "main") << "--insecure: the EdgeManager API is plaintext and answers anyone who reaches "
                              << c.listen.ToString() << "; use it on a closed lab network only";
  } else {
    creds = MtlsServerCredentials(
        identity, ClientCertificates::kRequire,
        FenceLeaderEpochs(RequirePeerNames({pki::kControllerName, pki::kOperatorName}), fence));
    auto cc = MtlsChannelCredentials(identity);
    if (!cc) {
      SEGWAN_LOG(kError, "main") << cc.error().ToString();
      return 2;
    }
    channel_creds = *cc;
  }
  if (!creds) {
    SEGWAN_LOG(kError, "main") << creds.error().ToString();
    return 2;
  }
  // Only the management interfaces (and the router itself) may open a connection to the API.
  ApiGuard guard(c.listen.port, c.mgmt_interfaces);
  if (auto st = guard.Install(); !st) SEGWAN_LOG(kWarn, "main") << st.error().message;
  grpc::ServerBuilder builder;
  // Peers ping every 10 s to notice a dead connection: allowed, without strikes.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(kMaxApiMessage);
  int port = 0;
  builder.AddListeningPort(c.listen.ToString(), *creds, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    SEGWAN_LOG(kError, "main") << "cannot listen on " << c.listen.ToString();
    return 1;
  }
  SEGWAN_LOG(kInfo, "main") << "edge-manager " << Version() << " (" << c.device_id
                            << ") serving EdgeManager on " << c.listen.ToString()
                            << (c.insecure ? " (plaintext)" : " with mutual TLS (controller and operators only)");
  std::unique_ptr<Registrar> registrar;
  std::unique_ptr<CertificateRenewer> renewer;
  if (c.controller) {
    RegistrationInfo info{
        .device_id = c.device_id,
        .token_file = c.token_file,
        .grpc_address = c.advertise,
        .capabilities = Capabilities(*mode, xdp != nullptr, altmark != nullptr),
        .slice_mode = *mode == SliceMode::kVrf ? segwan::v1::SLICE_MODE_VRF : segwan::v1::SLICE_MODE_TABLE,
        .locator = c.locator ? c.locator->ToString() : "",
        .version = std::string(Version()),
        .interfaces =
            [&dp = *dp, roles] {
              auto links = dp->Links();
              return links ? InterfacesToProto(*links, roles) : std::vector<segwan::v1::Interface>{};
            },
        .leader_epoch = [fence](uint64_t epoch) { fence->Admit(epoch); },
    };
    grpc::ChannelArguments args;  // a dead controller noticed in seconds, a returning one reached at once
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
    // A controller that takes over listens within a second of the old one's end: reached at once.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::string names;
    for (const auto& ctl : c.controllers) {
      channels.push_back(c.insecure ? grpc::CreateCustomChannel(ctl.ToString(), channel_creds, args)
                                    : MtlsChannel(ctl.ToString(), channel_creds, pki::kControllerName, args));
      names += (names.empty() ? "" : ", ") + ctl.ToString();
    }
    registrar = std::make_unique<Registrar>(channels, std::move(info));
    registrar->Start();
    if (!c.insecure) {
      renewer = std::make_unique<CertificateRenewer>(channels, c.tls_dir);
      renewer->Start();
    }
    SEGWAN_LOG(kInfo, "main") << "registering with the controller at " << names;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop, &sig);
    SEGWAN_LOG(kInfo, "main") << "signal " << sig << ", stopping";
    service.StopStreams();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  });
  server->Wait();
  waiter.join();
  if (renewer) renewer->Stop();
  if (registrar) registrar->Stop();  // unregisters
  return 0;
}

}  // namespace segwan::edge
