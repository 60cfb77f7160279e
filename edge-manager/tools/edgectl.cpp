// segwan-edgectl: talk to one edge-manager by hand, JSON in and out.
//   segwan-edgectl --edge HOST:PORT interfaces
//   segwan-edgectl --edge HOST:PORT apply FILE|-     (a Slice in JSON, proto field names)
//   segwan-edgectl --edge HOST:PORT remove ID
//   segwan-edgectl --edge HOST:PORT state
//   segwan-edgectl --edge HOST:PORT stamp init sender|reflector [--address A] [--port P]
//   segwan-edgectl --edge HOST:PORT stamp create sender|reflector FILE|-  (StampSessionParams JSON)
//   segwan-edgectl --edge HOST:PORT stamp start|stop|destroy sender|reflector SSID
//   segwan-edgectl --edge HOST:PORT stamp results SSID [--max N]
//   segwan-edgectl --edge HOST:PORT stamp reset sender|reflector
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "edge-manager/agent/server.h"
#include "segwan/flags.h"
#include "segwan/v1/edge.grpc.pb.h"

namespace pb = segwan::v1;

static const char* CodeName(grpc::StatusCode c) {
  static const char* const kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  const auto i = static_cast<size_t>(c);
  return i < sizeof kNames / sizeof kNames[0] ? kNames[i] : "UNKNOWN";
}

static int Print(const grpc::Status& st, const google::protobuf::Message& m) {
  if (!st.ok()) {
    std::cerr << "segwan-edgectl: " << CodeName(st.error_code()) << ": " << st.error_message()
              << "\n";
    return 1;
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &json, opts);
  std::cout << json;
  return 0;
}

static std::optional<std::string> ReadInput(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    ss << in.rdbuf();
  }
  return ss.str();
}

static int Stamp(pb::EdgeManager::Stub& stub, grpc::ClientContext& ctx, const segwan::FlagSet& f,
                 const std::vector<std::string>& pos) {
  const std::string& op = pos[1];
  auto role = [&](const std::string& r) {
    return r == "sender" ? pb::STAMP_ROLE_SENDER : r == "reflector" ? pb::STAMP_ROLE_REFLECTOR
                                                                    : pb::STAMP_ROLE_UNSPECIFIED;
  };
  if (op == "init" && pos.size() == 3) {
    pb::InitRequest req;
    req.set_role(role(pos[2]));
    req.set_stamp_source_address(f.GetString("address"));
    req.set_reflector_udp_port(static_cast<uint32_t>(f.GetInt("port")));
    pb::InitResponse resp;
    return Print(stub.Init(&ctx, req, &resp), resp);
  }
  if (op == "reset" && pos.size() == 3) {
    pb::ResetRequest req;
    req.set_role(role(pos[2]));
    pb::ResetResponse resp;
    return Print(stub.Reset(&ctx, req, &resp), resp);
  }
  if (op == "create" && pos.size() == 4) {
    auto text = ReadInput(pos[3]);
    if (!text) {
      std::cerr << "segwan-edgectl: cannot read " << pos[3] << "\n";
      return 2;
    }
    pb::CreateStampSessionRequest req;
    req.set_role(role(pos[2]));
    if (auto st = google::protobuf::util::JsonStringToMessage(*text, req.mutable_params()); !st.ok()) {
      std::cerr << "segwan-edgectl: bad session JSON: " << st.ToString() << "\n";
      return 2;
    }
    pb::CreateStampSessionResponse resp;
    return Print(stub.CreateStampSession(&ctx, req, &resp), resp);
  }
  if ((op == "start" || op == "stop" || op == "destroy") && pos.size() == 4) {
    pb::StampSessionRef ref;
    ref.set_role(role(pos[2]));
    ref.set_ssid(static_cast<uint32_t>(std::strtoul(pos[3].c_str(), nullptr, 10)));
    if (op == "start") {
      pb::StartStampSessionRequest req;
      *req.mutable_session() = ref;
      pb::StartStampSessionResponse resp;
      return Print(stub.StartStampSession(&ctx, req, &resp), resp);
    }
    if (op == "stop") {
      pb::StopStampSessionRequest req;
      *req.mutable_session() = ref;
      pb::StopStampSessionResponse resp;
      return Print(stub.StopStampSession(&ctx, req, &resp), resp);
    }
    pb::DestroyStampSessionRequest req;
    *req.mutable_session() = ref;
    pb::DestroyStampSessionResponse resp;
    return Print(stub.DestroyStampSession(&ctx, req, &resp), resp);
  }
  if (op == "results" && pos.size() == 3) {
    pb::GetStampSessionResultsRequest req;
    req.set_ssid(static_cast<uint32_t>(std::strtoul(pos[2].c_str(), nullptr, 10)));
    req.set_max_results(static_cast<uint32_t>(f.GetInt("max")));
    pb::GetStampSessionResultsResponse resp;
    return Print(stub.GetStampSessionResults(&ctx, req, &resp), resp);
  }
  std::cerr << "segwan-edgectl: unknown stamp command (see --help)\n";
  return 2;
}

int main(int argc, char** argv) {
  segwan::FlagSet f("segwan-edgectl",
                    "Talks to an edge-manager's EdgeManager API (JSON in and out).\n"
                    "Commands: interfaces | apply FILE|- | remove ID | state |\n"
                    "  stamp init|reset ROLE | stamp create ROLE FILE|- |\n"
                    "  stamp start|stop|destroy ROLE SSID | stamp results SSID");
  f.AddString("edge", "[::1]:50061", "edge-manager address host:port");
  f.AddInt("timeout-ms", 5000, "deadline of each call");
  f.AddString("tls-ca", "", "CA certificate (PEM); enables TLS");
  f.AddString("tls-cert", "", "client certificate (PEM)");
  f.AddString("tls-key", "", "client key (PEM)");
  f.AddString("address", "", "stamp init reflector: the STAMP address to listen on");
  f.AddInt("port", 0, "stamp init reflector: UDP port (0 = 862)");
  f.AddInt("max", 0, "stamp results: at most this many records (0 = all)");
  if (auto err = f.Parse(argc, argv)) {
    std::cerr << "segwan-edgectl: " << *err << "\n";
    return 2;
  }
  if (f.HelpRequested() || f.Positional().empty()) {
    (f.HelpRequested() ? std::cout : std::cerr) << f.Usage();
    return f.HelpRequested() ? 0 : 2;
  }
  segwan::edge::TlsConfig tls{f.GetString("tls-cert"), f.GetString("tls-key"), f.GetString("tls-ca")};
  auto creds = segwan::edge::ChannelCredentials(tls);
  if (!creds) {
    std::cerr << "segwan-edgectl: " << creds.error().ToString() << "\n";
    return 2;
  }
  auto stub = pb::EdgeManager::NewStub(grpc::CreateChannel(f.GetString("edge"), *creds));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(f.GetInt("timeout-ms")));
  const auto& pos = f.Positional();
  const std::string& cmd = pos[0];
  if (cmd == "interfaces") {
    pb::ListInterfacesResponse resp;
    return Print(stub->ListInterfaces(&ctx, {}, &resp), resp);
  }
  if (cmd == "state") {
    pb::GetStateResponse resp;
    return Print(stub->GetState(&ctx, {}, &resp), resp);
  }
  if (cmd == "remove" && pos.size() == 2) {
    pb::RemoveSliceRequest req;
    req.set_id(pos[1]);
    pb::RemoveSliceResponse resp;
    return Print(stub->RemoveSlice(&ctx, req, &resp), resp);
  }
  if (cmd == "apply" && pos.size() == 2) {
    auto text = ReadInput(pos[1]);
    if (!text) {
      std::cerr << "segwan-edgectl: cannot read " << pos[1] << "\n";
      return 2;
    }
    pb::ApplySliceRequest req;
    auto st = google::protobuf::util::JsonStringToMessage(*text, req.mutable_slice());
    if (!st.ok()) {
      std::cerr << "segwan-edgectl: bad slice JSON: " << st.ToString() << "\n";
      return 2;
    }
    pb::ApplySliceResponse resp;
    return Print(stub->ApplySlice(&ctx, req, &resp), resp);
  }
  if (cmd == "stamp" && pos.size() >= 2) return Stamp(*stub, ctx, f, pos);
  std::cerr << "segwan-edgectl: unknown command (see --help)\n";
  return 2;
}
