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
//   segwan-edgectl --tls-dir DIR credentials --url URL --token-file F
//
// Agents answer only the controller and operators, over mutual TLS: `credentials` makes a key
// in --tls-dir and has the controller (REST, operator token) sign a short-lived operator
// certificate for it; the other commands then use it with --device ID (the agent's device id,
// which its certificate must name). --insecure talks plaintext to an agent run --insecure.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "edge-manager/agent/enrolment.h"
#include "edge-manager/agent/server.h"
#include "segwan/files.h"
#include "segwan/flags.h"
#include "segwan/pki.h"
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

// A key in --tls-dir and an operator certificate for it, signed by the controller's CA.
static int Credentials(const segwan::FlagSet& f) {
  const std::string dir = f.GetString("tls-dir");
  if (dir.empty()) {
    std::cerr << "segwan-edgectl: credentials: --tls-dir is required\n";
    return 2;
  }
  auto token = segwan::ReadFirstLine(f.GetString("token-file"));
  if (!token || token->empty()) {
    std::cerr << "segwan-edgectl: credentials: --token-file: cannot read the operator token\n";
    return 2;
  }
  mkdir(dir.c_str(), 0700);
  const auto id = segwan::edge::IdentityIn(dir);
  auto key = segwan::ReadTextFile(id.key_file, "key");
  if (!key) {
    key = segwan::pki::GenerateKey();
    if (!key || !segwan::WriteFileAtomic(id.key_file, *key, 0600)) {
      std::cerr << "segwan-edgectl: cannot write " << id.key_file << "\n";
      return 1;
    }
  }
  auto csr = segwan::pki::MakeCsr(*key, "operator");
  if (!csr) {
    std::cerr << "segwan-edgectl: " << csr.error().message << "\n";
    return 1;
  }
  httplib::Client http(f.GetString("url"));
  http.set_connection_timeout(5);
  http.set_read_timeout(10);
  auto res = http.Post("/api/v1/operator/certificates", {{"Authorization", "Bearer " + *token}},
                       nlohmann::json{{"csr", *csr}}.dump(), "application/json");
  if (!res) {
    std::cerr << "segwan-edgectl: cannot reach " << f.GetString("url") << "\n";
    return 1;
  }
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 201 || !body.is_object() || !body.contains("certificate")) {
    std::cerr << "segwan-edgectl: the controller answered " << res->status << ": " << res->body << "\n";
    return 1;
  }
  if (!segwan::WriteFileAtomic(id.ca_file, body["ca_certificate"].get<std::string>(), 0644) ||
      !segwan::WriteFileAtomic(id.cert_file, body["certificate"].get<std::string>(), 0644)) {
    std::cerr << "segwan-edgectl: cannot write into " << dir << "\n";
    return 1;
  }
  std::cout << nlohmann::json{{"tls_dir", dir}, {"expires", body["expires"]}}.dump() << "\n";
  return 0;
}

int main(int argc, char** argv) {
  segwan::FlagSet f("segwan-edgectl",
                    "Talks to an edge-manager's EdgeManager API (JSON in and out).\n"
                    "Commands: interfaces | apply FILE|- | remove ID | state |\n"
                    "  stamp init|reset ROLE | stamp create ROLE FILE|- |\n"
                    "  stamp start|stop|destroy ROLE SSID | stamp results SSID");
  f.AddString("edge", "[::1]:50061", "edge-manager address host:port");
  f.AddInt("timeout-ms", 5000, "deadline of each call");
  f.AddString("tls-dir", "", "operator credentials: key.pem, cert.pem, ca.pem (see 'credentials')");
  f.AddString("device", "", "the agent's device id, which its certificate must name");
  f.AddBool("insecure", false, "plaintext, for an agent run --insecure");
  f.AddString("url", "http://127.0.0.1:8080", "credentials: the controller's REST address");
  f.AddString("token-file", "", "credentials: file holding the operator token");
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
  if (f.Positional()[0] == "credentials") return Credentials(f);
  std::shared_ptr<grpc::Channel> channel;
  if (f.GetBool("insecure")) {
    channel = grpc::CreateChannel(f.GetString("edge"), grpc::InsecureChannelCredentials());
  } else {
    if (f.GetString("tls-dir").empty() || f.GetString("device").empty()) {
      std::cerr << "segwan-edgectl: --tls-dir and --device are required (or --insecure)\n";
      return 2;
    }
    auto creds = segwan::MtlsChannelCredentials(segwan::edge::IdentityIn(f.GetString("tls-dir")));
    if (!creds) {
      std::cerr << "segwan-edgectl: " << creds.error().ToString() << "\n";
      return 2;
    }
    channel = segwan::MtlsChannel(f.GetString("edge"), *creds, segwan::pki::DeviceName(f.GetString("device")));
  }
  auto stub = pb::EdgeManager::NewStub(channel);
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
