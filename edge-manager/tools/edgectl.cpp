// segwan-edgectl: talk to one edge-manager by hand, JSON in and out.
//   segwan-edgectl --edge HOST:PORT interfaces
//   segwan-edgectl --edge HOST:PORT apply FILE|-     (a Slice in JSON, proto field names)
//   segwan-edgectl --edge HOST:PORT remove ID
//   segwan-edgectl --edge HOST:PORT state
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

int main(int argc, char** argv) {
  segwan::FlagSet f("segwan-edgectl",
                    "Talks to an edge-manager's EdgeManager API (JSON in and out).\n"
                    "Commands: interfaces | apply FILE|- | remove ID | state");
  f.AddString("edge", "[::1]:50061", "edge-manager address host:port");
  f.AddInt("timeout-ms", 5000, "deadline of each call");
  f.AddString("tls-ca", "", "CA certificate (PEM); enables TLS");
  f.AddString("tls-cert", "", "client certificate (PEM)");
  f.AddString("tls-key", "", "client key (PEM)");
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
    std::stringstream ss;
    if (pos[1] == "-") {
      ss << std::cin.rdbuf();
    } else {
      std::ifstream in(pos[1]);
      if (!in) {
        std::cerr << "segwan-edgectl: cannot read " << pos[1] << "\n";
        return 2;
      }
      ss << in.rdbuf();
    }
    pb::ApplySliceRequest req;
    auto st = google::protobuf::util::JsonStringToMessage(ss.str(), req.mutable_slice());
    if (!st.ok()) {
      std::cerr << "segwan-edgectl: bad slice JSON: " << st.ToString() << "\n";
      return 2;
    }
    pb::ApplySliceResponse resp;
    return Print(stub->ApplySlice(&ctx, req, &resp), resp);
  }
  std::cerr << "segwan-edgectl: unknown command (see --help)\n";
  return 2;
}
