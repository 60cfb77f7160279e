#include "edge-os/controller/config.h"

namespace segwan::controller {

void AddControllerFlags(FlagSet& f) {
  f.AddString("config", "", "read settings from this file (name = value lines)");
  f.AddString("http-listen", kDefaultHttpListen, "REST API, dashboard and /metrics address");
  f.AddString("grpc-listen", kDefaultGrpcListen, "Registration service address for the edges");
  f.AddString("data-dir", kDefaultDataDir, "where the controller keeps its files");
  f.AddString("db", "", "SQLite database file (default: DATA_DIR/segwan.db)");
  f.AddString("operator-token-file", "", "operator bearer token (default: DATA_DIR/operator.token)");
  f.AddString("device-token-file", "", "edge registration token (default: DATA_DIR/device.token)");
  f.AddString("web-root", "", "serve the dashboard from this folder (development)");
  f.AddBool("auto-enable", false, "enable edges as soon as they register (lab)");
  f.AddString("log-level", "info", "debug, info, warn or error");
}

Result<ControllerConfig> ControllerConfigFromFlags(const FlagSet& f) {
  ControllerConfig c;
  for (const char* name : {"http-listen", "grpc-listen"}) {
    const auto text = f.GetString(name);
    auto hp = ParseHostPort(text);
    if (!hp) return FieldError(std::string("--") + name, "'" + text + "' is not host:port");
    (std::string(name) == "http-listen" ? c.http_listen : c.grpc_listen) = *hp;
  }
  c.data_dir = f.GetString("data-dir");
  if (c.data_dir.empty()) return FieldError("--data-dir", "must not be empty");
  auto or_default = [&](const char* flag, const char* file) {
    const auto v = f.GetString(flag);
    return v.empty() ? c.data_dir + "/" + file : v;
  };
  c.db_path = or_default("db", "segwan.db");
  c.operator_token_file = or_default("operator-token-file", "operator.token");
  c.device_token_file = or_default("device-token-file", "device.token");
  c.web_root = f.GetString("web-root");
  c.auto_enable = f.GetBool("auto-enable");
  return c;
}

}  // namespace segwan::controller
