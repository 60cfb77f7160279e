// The REST API end to end over real HTTP on loopback, a real SQLite file and fake edges:
// every endpoint, its error paths, tenant isolation, and that a refused request changes
// nothing. Reconciliation and a controller restart run against the same fakes.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>

#include "edge-os/controller/controller.h"
#include "edge-os/northbound/rest.h"
#include "edge-os/trust/ca.h"
#include "edge-os/trust/device_trust.h"
#include "segwan/pki.h"
#include "edge-os/store/store.h"
#include "test_store.h"
#include "fake_edges.h"
#include "segwan/clock.h"

namespace segwan::controller {
namespace {

using nlohmann::json;
using testing::FakeConnector;
using testing::LabRegistration;
namespace pb = segwan::v1;

constexpr const char* kOperator = "operator-secret";
constexpr const char* kDeviceToken = "device-secret";

struct Reply {
  int status = 0;
  json body;
};

// A request body changed one way, and the error it must get.
struct BodyCase {
  std::function<void(json&)> change;
  int status;
  const char* field;
};

class RestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("segwan-rest-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Boot();
    for (const char* x : {"a", "b", "c"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
    ctl_->RunQueued();
  }
  void TearDown() override {
    Shutdown();
    std::filesystem::remove_all(dir_);
  }
  // (Re)starts the controller on the same database file, as after a restart.
  void Boot() {
    auto s = testing::OpenTestStore(dir_);
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    ControllerOptions o;
    o.device_token = kDeviceToken;
    o.auto_enable = true;
    o.start_threads = false;
    o.aggregate_interval_ms = 1000;
    o.poll_interval = std::chrono::milliseconds(100);
    o.max_slices_per_tenant = max_slices_;
    o.max_sessions_per_tenant = max_sessions_;
    ctl_ = std::make_unique<Controller>(store_.get(), &edges_, o);
    ctl_->SetOperatorToken(kOperator);
    rest_ = std::make_unique<RestServer>(ctl_.get(), "");
    auto port = rest_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  }
  void Shutdown() {
    client_.reset();
    if (rest_) rest_->Stop();
    rest_.reset();
    ctl_.reset();
    store_.reset();
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& token,
             const std::string& body = "") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    httplib::Result r = method == "GET"    ? client_->Get(path.c_str(), h)
                        : method == "POST" ? client_->Post(path.c_str(), h, body, "application/json")
                        : method == "PUT"  ? client_->Put(path.c_str(), h, body, "application/json")
                                           : client_->Delete(path.c_str(), h);
    if (!r) return {0, json()};
    Reply out{r->status, json()};
    if (!r->body.empty()) out.body = json::parse(r->body, nullptr, false);
    return out;
  }
  Reply Call(const std::string& method, const std::string& path, const std::string& token, const json& body) {
    return Call(method, path, token, body.dump());
  }
  std::string NewTenant(const std::string& name) {
    auto r = Call("POST", "/api/v1/tenants", kOperator, json{{"name", name}});
    EXPECT_EQ(r.status, 201) << r.body;
    return r.body.value("token", "");
  }
  // Slice sl1 (edge-a, edge-b) and a stateful delay session ds1 from edge-a to edge-b.
  void SliceWithStatefulSession(const std::string& tenant) {
    ASSERT_EQ(Call("POST", "/api/v1/slices", tenant, SliceBody()).status, 201);
    auto r = Call("POST", "/api/v1/delay-sessions", tenant,
                  json{{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}, {"reflector_mode", "stateful"}});
    ASSERT_EQ(r.status, 201) << r.body;
  }
  static json SliceBody() {
    return {{"name", "blue"},
            {"sites", {{{"device", "edge-a"}, {"interface", "lan0"}, {"nexthop4", "10.10.1.2"}},
                       {{"device", "edge-b"}, {"interface", "lan0"}, {"nexthop4", "10.10.2.2"}}}},
            {"paths", {{{"from", "edge-a"}, {"to", "edge-b"}, {"waypoints", {"fc00:0:1::e"}}},
                       {{"from", "edge-b"}, {"to", "edge-a"}, {"waypoints", {"fc00:0:2::e"}}}}}};
  }
  static void ExpectError(const Reply& r, int status, const std::string& field) {
    EXPECT_EQ(r.status, status) << r.body;
    ASSERT_TRUE(r.body.contains("error")) << r.body;
    EXPECT_TRUE(r.body["error"]["code"].is_string());
    EXPECT_FALSE(r.body["error"]["message"].get<std::string>().empty());
    if (field.empty()) {
      EXPECT_TRUE(r.body["error"]["field"].is_null()) << r.body;
    } else {
      EXPECT_EQ(r.body["error"]["field"], field) << r.body;
    }
  }
  // Everything a tenant-visible request could have changed.
  json Snapshot() {
    return {Call("GET", "/api/v1/slices", kOperator).body, Call("GET", "/api/v1/delay-sessions", kOperator).body,
            Call("GET", "/api/v1/tenants", kOperator).body};
  }

  std::filesystem::path dir_;
  size_t max_slices_ = 100, max_sessions_ = 500;
  FakeConnector edges_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Controller> ctl_;
  std::unique_ptr<RestServer> rest_;
  std::unique_ptr<httplib::Client> client_;
};

// A tenant's share: past it, 429 resource_exhausted, and nothing created; other tenants are
// not affected.
TEST_F(RestTest, QuotasAreEnforcedPerTenant) {
  Shutdown();
  max_slices_ = 1;
  max_sessions_ = 1;
  Boot();
  for (const char* x : {"a", "b", "c"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
  const auto t = NewTenant("acme");
  const auto u = NewTenant("globex");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  json second = SliceBody();
  second["sites"] = {{{"device", "edge-c"}, {"interface", "lan0"}}, {{"device", "edge-a"}, {"interface", "lan0"}}};
  const auto before = Snapshot();
  auto r = Call("POST", "/api/v1/slices", t, second);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.body["error"]["code"], "resource_exhausted");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("--max-slices-per-tenant"), std::string::npos);
  EXPECT_EQ(Snapshot(), before);
  const json ds = {{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}};
  ASSERT_EQ(Call("POST", "/api/v1/delay-sessions", t, ds).status, 201);
  EXPECT_EQ(Call("POST", "/api/v1/delay-sessions", t, ds).status, 429);
  // Another tenant has its own share: globex's first slice (on edges acme does not use) is made.
  ASSERT_TRUE(ctl_->Register(LabRegistration("d", kDeviceToken), "test"));
  const json theirs = {{"name", "green"},
                       {"sites", {{{"device", "edge-c"}, {"interface", "lan0"}}, {{"device", "edge-d"}, {"interface", "lan0"}}}}};
  auto made = Call("POST", "/api/v1/slices", u, theirs);
  EXPECT_EQ(made.status, 201) << made.body;
}

TEST_F(RestTest, EveryResponseCarriesTheSecurityHeaders) {
  for (const std::string path : {"/api/v1/health", "/api/v1/slices", "/api/v1/no-such", "/metrics"}) {
    auto r = client_->Get(path.c_str(), {{"Authorization", std::string("Bearer ") + kOperator}});
    ASSERT_TRUE(r) << path;
    EXPECT_NE(r->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos) << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY") << path;
    EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store") << path;
  }
}

// Enrolment over REST: join tokens for named devices, one per enrolled id, revocation and
// deletion, all for the operator only.
TEST_F(RestTest, DevicesAreNamedRevokedAndDeletedByTheOperator) {
  auto ca = CertificateAuthority::LoadOrCreate(dir_.string());
  ASSERT_TRUE(ca) << ca.error().ToString();
  DeviceTrust trust(store_.get(), ca->get());
  RestServer rest(ctl_.get(), "", &trust);
  auto port = rest.Start("127.0.0.1", 0);
  ASSERT_TRUE(port);
  client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
  const auto tenant = NewTenant("acme");
  ExpectError(Call("POST", "/api/v1/devices", tenant, json{{"id", "edge-z"}}), 403, "");
  ExpectError(Call("POST", "/api/v1/devices", kOperator, json{{"id", "Edge Z"}}), 400, "id");
  auto r = Call("POST", "/api/v1/devices", kOperator, json{{"id", "edge-z"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body["join_token"].get<std::string>().size(), 48u);
  EXPECT_NE(r.body["ca_certificate"].get<std::string>().find("BEGIN CERTIFICATE"), std::string::npos);
  // Enrolled with that token, the id cannot get another until it is revoked.
  auto key = pki::GenerateKey();
  ASSERT_TRUE(trust.Enroll("edge-z", r.body["join_token"], *pki::MakeCsr(*key, "z")));
  ExpectError(Call("POST", "/api/v1/devices", kOperator, json{{"id", "edge-z"}}), 409, "id");
  auto list = Call("GET", "/api/v1/enrolments", kOperator);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body.size(), 1u);
  EXPECT_EQ(list.body[0]["state"], "enrolled");
  ExpectError(Call("GET", "/api/v1/enrolments", tenant), 403, "");
  EXPECT_EQ(Call("POST", "/api/v1/devices/edge-z/revoke", kOperator).status, 204);
  EXPECT_EQ(Call("POST", "/api/v1/devices", kOperator, json{{"id", "edge-z"}}).status, 201);
  // A device a slice uses cannot be deleted; one nobody uses can, and is gone.
  ASSERT_EQ(Call("POST", "/api/v1/slices", tenant, SliceBody()).status, 201);
  ExpectError(Call("DELETE", "/api/v1/devices/edge-a", kOperator), 409, "id");
  EXPECT_TRUE(ctl_->GetDevice("edge-a"));
  EXPECT_EQ(Call("DELETE", "/api/v1/devices/edge-c", kOperator).status, 204);
  EXPECT_FALSE(ctl_->GetDevice("edge-c"));
  ExpectError(Call("DELETE", "/api/v1/devices/edge-c", kOperator), 404, "id");
  client_.reset();
  rest.Stop();
}

TEST_F(RestTest, NamesAreCountedInCharacters) {
  std::string name;
  for (int i = 0; i < 64; ++i) name += "\xc3\xa9";  // 64 characters, 128 bytes
  EXPECT_EQ(Call("POST", "/api/v1/tenants", kOperator, json{{"name", name}}).status, 201);
  ExpectError(Call("POST", "/api/v1/tenants", kOperator, json{{"name", name + "e"}}), 400, "name");
}

TEST_F(RestTest, TokensAreRequiredAndChecked) {
  EXPECT_EQ(Call("GET", "/api/v1/health", "").status, 200);
  ExpectError(Call("GET", "/api/v1/devices", ""), 401, "Authorization");
  ExpectError(Call("GET", "/api/v1/devices", "wrong"), 401, "Authorization");
  auto me = Call("GET", "/api/v1/whoami", kOperator);
  EXPECT_EQ(me.body["operator"], true);
  const auto t = NewTenant("acme");
  me = Call("GET", "/api/v1/whoami", t);
  EXPECT_EQ(me.body["operator"], false);
  EXPECT_EQ(me.body["tenant"], "t1");
  ExpectError(Call("GET", "/api/v1/nothing-here", kOperator), 404, "");
  auto big = Call("POST", "/api/v1/tenants", kOperator, std::string(2 << 20, 'x'));  // over 1 MiB
  ExpectError(big, 413, "");
  EXPECT_EQ(big.body["error"]["code"], "too_large");
}

TEST_F(RestTest, Tenants) {
  const auto t = NewTenant("acme");
  EXPECT_EQ(t.size(), 48u);
  ExpectError(Call("POST", "/api/v1/tenants", kOperator, json{{"name", "acme"}}), 409, "name");
  ExpectError(Call("POST", "/api/v1/tenants", kOperator, json::object()), 400, "name");
  ExpectError(Call("POST", "/api/v1/tenants", kOperator, json{{"name", 7}}), 400, "name");
  ExpectError(Call("POST", "/api/v1/tenants", kOperator, std::string("{not json")), 400, "");
  ExpectError(Call("POST", "/api/v1/tenants", t, json{{"name", "evil"}}), 403, "");
  auto all = Call("GET", "/api/v1/tenants", kOperator);
  ASSERT_EQ(all.body.size(), 1u);
  EXPECT_EQ(all.body[0]["name"], "acme");
  EXPECT_FALSE(all.body[0].contains("token"));
  EXPECT_EQ(Call("GET", "/api/v1/tenants", t).body.size(), 1u);  // itself
}

TEST_F(RestTest, DevicesAndEnabling) {
  auto list = Call("GET", "/api/v1/devices", kOperator);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body.size(), 3u);
  auto a = Call("GET", "/api/v1/devices/edge-a", kOperator).body;
  EXPECT_EQ(a["connected"], true);
  EXPECT_EQ(a["enabled"], true);
  EXPECT_EQ(a["slice_mode"], "table");
  EXPECT_EQ(a["interfaces"][1]["name"], "lan0");
  EXPECT_EQ(a["interfaces"][1]["role"], "lan");
  ExpectError(Call("GET", "/api/v1/devices/edge-z", kOperator), 404, "id");
  const auto t = NewTenant("acme");
  EXPECT_EQ(Call("GET", "/api/v1/devices", t).body.size(), 3u);  // tenants pick sites from them
  ExpectError(Call("POST", "/api/v1/devices/edge-a/disable", t), 403, "");
  auto d = Call("POST", "/api/v1/devices/edge-a/disable", kOperator);
  EXPECT_EQ(d.body["enabled"], false);
  // a disabled device takes no slice
  ExpectError(Call("POST", "/api/v1/slices", t, SliceBody()), 409, "sites[0].device");
  EXPECT_EQ(Call("POST", "/api/v1/devices/edge-a/enable", kOperator).body["enabled"], true);
  ExpectError(Call("POST", "/api/v1/devices/edge-z/enable", kOperator), 404, "id");
}

TEST_F(RestTest, RegistrationRefusesUnknownTokensAndBadFields) {
  auto bad = LabRegistration("a", "guess");
  EXPECT_EQ(ctl_->Register(bad, "test").error().code, kUnauthenticated);
  auto r = LabRegistration("a", kDeviceToken);
  r.set_device_id("Edge_A");
  EXPECT_EQ(ctl_->Register(r, "test").error().field, "device_id");
  r = LabRegistration("a", kDeviceToken);
  r.set_grpc_address("nowhere");
  EXPECT_EQ(ctl_->Register(r, "test").error().field, "grpc_address");
  EXPECT_EQ(Call("GET", "/api/v1/devices", kOperator).body.size(), 3u);
}

TEST_F(RestTest, HeartbeatsKeepADeviceConnectedAndAnUnknownSessionReregisters) {
  auto reply = ctl_->Register(LabRegistration("a", kDeviceToken), "test");
  ASSERT_TRUE(reply);
  EXPECT_TRUE(ctl_->Heartbeat("edge-a", reply->session_id()));
  EXPECT_FALSE(ctl_->Heartbeat("edge-a", "stale"));
  EXPECT_FALSE(ctl_->Heartbeat("edge-q", reply->session_id()));
  ctl_->Unregister("edge-a", reply->session_id());
  EXPECT_EQ(Call("GET", "/api/v1/devices/edge-a", kOperator).body["connected"], false);
}

TEST_F(RestTest, CreateSliceProgramsEveryEdgeAndIsIsolatedPerTenant) {
  const auto t1 = NewTenant("acme");
  const auto t2 = NewTenant("globex");
  auto r = Call("POST", "/api/v1/slices", t1, SliceBody());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body["id"], "sl1");
  EXPECT_EQ(r.body["tenant"], "t1");
  EXPECT_EQ(r.body["table"], 1001);
  EXPECT_EQ(r.body["edges"]["edge-a"]["state"], "applied");
  const auto& a = edges_.Edge("edge-a")->slices.at("sl1");
  EXPECT_EQ(a.table(), 1001u);
  EXPECT_EQ(a.remotes(0).segments(0), "fc00:0:1::e");
  EXPECT_EQ(a.remotes(0).segments(1), "fc00:0:b:1::d6");
  EXPECT_EQ(edges_.Edge("edge-b")->slices.at("sl1").remotes(0).segments(0), "fc00:0:2::e");
  EXPECT_TRUE(edges_.Edge("edge-c")->slices.empty());

  EXPECT_EQ(Call("GET", "/api/v1/slices", t1).body.size(), 1u);
  EXPECT_EQ(Call("GET", "/api/v1/slices", t2).body.size(), 0u);
  EXPECT_EQ(Call("GET", "/api/v1/slices", kOperator).body.size(), 1u);
  EXPECT_EQ(Call("GET", "/api/v1/slices/sl1", t1).status, 200);
  ExpectError(Call("GET", "/api/v1/slices/sl1", t2), 404, "id");
  ExpectError(Call("DELETE", "/api/v1/slices/sl1", t2), 404, "id");
  EXPECT_EQ(edges_.Edge("edge-a")->slices.count("sl1"), 1u);

  // Overlapping address space is fine; the same LAN interface is not, and another tenant
  // does not learn whose slice holds it.
  auto other = SliceBody();
  other["sites"][0]["device"] = "edge-c";
  auto conflict = Call("POST", "/api/v1/slices", t2, other);
  ExpectError(conflict, 409, "sites[1].interface");
  EXPECT_EQ(conflict.body["error"]["message"].get<std::string>().find("sl1"), std::string::npos);
  // the operator creates on a tenant's behalf
  auto by_op = SliceBody();
  by_op["sites"] = {{{"device", "edge-c"}, {"interface", "lan0"}}, {{"device", "edge-a"}, {"interface", "lan1"}}};
  ExpectError(Call("POST", "/api/v1/slices", kOperator, by_op), 400, "tenant");
}

TEST_F(RestTest, BadSlicesAreRefusedByFieldAndChangeNothing) {
  const auto t = NewTenant("acme");
  const auto before = Snapshot();
  const BodyCase cases[] = {
      {[](json& b) { b.erase("name"); }, 400, "name"},
      {[](json& b) { b["sites"] = json::array({b["sites"][0]}); }, 400, "sites"},
      {[](json& b) { b["sites"] = "edge-a"; }, 400, "sites"},
      {[](json& b) { b["sites"][1] = 5; }, 400, "sites[1]"},
      {[](json& b) { b["sites"][1].erase("interface"); }, 400, "sites[1].interface"},
      {[](json& b) { b["sites"][1]["device"] = "edge-z"; }, 400, "sites[1].device"},
      {[](json& b) { b["sites"][0]["interface"] = "eth7"; }, 400, "sites[0].interface"},
      {[](json& b) { b["sites"][0]["nexthop4"] = "nope"; }, 400, "sites[0].nexthop4"},
      {[](json& b) { b["paths"][1]["waypoints"][0] = "fc00::zz"; }, 400, "paths[1].waypoints[0]"},
      {[](json& b) { b["paths"][1]["waypoints"][0] = 1; }, 400, "paths[1].waypoints[0]"},
      {[](json& b) { b["paths"][0]["to"] = "edge-c"; }, 400, "paths[0].to"},
      {[](json& b) { b["tenant"] = "t9"; }, 400, "tenant"},
  };
  for (const auto& c : cases) {
    auto body = SliceBody();
    c.change(body);
    ExpectError(Call("POST", "/api/v1/slices", t, body), c.status, c.field);
  }
  EXPECT_EQ(Snapshot(), before);
  EXPECT_TRUE(edges_.Edge("edge-a")->slices.empty());
  EXPECT_TRUE(edges_.Edge("edge-b")->slices.empty());
}

TEST_F(RestTest, AnEdgeThatRefusesRollsTheOthersBack) {
  const auto t = NewTenant("acme");
  edges_.Edge("edge-b")->FailWith("ApplySlice", kGrpcInvalidArgument);
  const auto before = Snapshot();
  auto r = Call("POST", "/api/v1/slices", t, SliceBody());
  ExpectError(r, 422, "sites[1]");
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("edge-b"), std::string::npos);
  EXPECT_TRUE(edges_.Edge("edge-a")->slices.empty()) << "edge-a kept the slice";
  EXPECT_EQ(Snapshot(), before);
}

TEST_F(RestTest, AnUnreachableEdgeIsPendingAndConvergesWhenItRegisters) {
  const auto t = NewTenant("acme");
  edges_.Edge("edge-b")->FailWith("ApplySlice", kGrpcUnavailable);
  auto r = Call("POST", "/api/v1/slices", t, SliceBody());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body["edges"]["edge-a"]["state"], "applied");
  EXPECT_EQ(r.body["edges"]["edge-b"]["state"], "pending");
  edges_.Edge("edge-b")->ClearFailures();
  ASSERT_TRUE(ctl_->Register(LabRegistration("b", kDeviceToken), "test"));
  ctl_->RunQueued();
  EXPECT_EQ(edges_.Edge("edge-b")->slices.count("sl1"), 1u);
  EXPECT_EQ(Call("GET", "/api/v1/slices/sl1", t).body["edges"]["edge-b"]["state"], "applied");
}

TEST_F(RestTest, ReconcileRestoresWhatAnEdgeLostAndRemovesWhatIsStale) {
  const auto t = NewTenant("acme");
  SliceWithStatefulSession(t);
  auto b = edges_.Edge("edge-b");
  b->Forget();  // the agent restarted with nothing
  pb::Slice stale;
  stale.set_id("sl77");
  b->ApplySlice(stale);  // a slice deleted while the edge was away
  pb::Slice foreign;
  foreign.set_id("ops-manual");
  b->ApplySlice(foreign);  // not the controller's: left alone
  ASSERT_TRUE(ctl_->Register(LabRegistration("b", kDeviceToken), "test"));
  ctl_->RunQueued();
  EXPECT_EQ(b->slices.count("sl1"), 1u);
  EXPECT_EQ(b->slices.count("sl77"), 0u);
  EXPECT_EQ(b->slices.count("ops-manual"), 1u);
  EXPECT_EQ(b->sessions.count({pb::STAMP_ROLE_REFLECTOR, 1}), 1u);
  EXPECT_EQ(b->running.count({pb::STAMP_ROLE_REFLECTOR, 1}), 1u);
  EXPECT_EQ(b->init_address[pb::STAMP_ROLE_REFLECTOR], "fc00:0:b::1");
}

TEST_F(RestTest, UpdatingASliceAddsAndRemovesExactlyItsSites) {
  const auto t = NewTenant("acme");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  auto a = edges_.Edge("edge-a");
  auto c = edges_.Edge("edge-c");
  // add site-c
  auto body = SliceBody();
  body["sites"].push_back({{"device", "edge-c"}, {"interface", "lan0"}});
  auto r = Call("PUT", "/api/v1/slices/sl1", t, body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["id"], "sl1");
  EXPECT_EQ(r.body["table"], 1001);
  ASSERT_EQ(c->slices.count("sl1"), 1u);
  EXPECT_EQ(c->slices.at("sl1").remotes_size(), 2);
  EXPECT_EQ(a->slices.at("sl1").remotes_size(), 2);
  // A refused update (edge-c, applied last, says no) puts edge-a and edge-b, already
  // changed, back on the previous plan.
  auto repinned = body;
  repinned["paths"][0]["waypoints"] = {"fc00:0:2::e"};
  c->FailWith("ApplySlice", kGrpcInvalidArgument);
  const auto before = Snapshot();
  const auto a_before = a->slices.at("sl1").SerializeAsString();
  const auto b_before = edges_.Edge("edge-b")->slices.at("sl1").SerializeAsString();
  ExpectError(Call("PUT", "/api/v1/slices/sl1", t, repinned), 422, "sites[2]");
  EXPECT_EQ(Snapshot(), before);
  EXPECT_EQ(a->slices.at("sl1").SerializeAsString(), a_before);
  EXPECT_EQ(a->slices.at("sl1").remotes(0).segments(0), "fc00:0:1::e");
  EXPECT_EQ(edges_.Edge("edge-b")->slices.at("sl1").SerializeAsString(), b_before);
  EXPECT_EQ(a->Calls().back(), "ApplySlice:sl1");  // the rollback itself
  c->ClearFailures();
  // remove site-c again: edge-c loses the slice, the others lose their route to it
  r = Call("PUT", "/api/v1/slices/sl1", t, SliceBody());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(c->slices.count("sl1"), 0u);
  EXPECT_EQ(a->slices.at("sl1").remotes_size(), 1);
  // a site a delay session measures cannot leave; other tenants cannot touch it
  ASSERT_EQ(Call("POST", "/api/v1/delay-sessions", t,
                 json{{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}}).status, 201);
  auto shrink = SliceBody();
  shrink["sites"][1] = {{"device", "edge-c"}, {"interface", "lan0"}};
  ExpectError(Call("PUT", "/api/v1/slices/sl1", t, shrink), 409, "sites");
  ExpectError(Call("PUT", "/api/v1/slices/sl1", NewTenant("globex"), SliceBody()), 404, "id");
  ExpectError(Call("PUT", "/api/v1/slices/sl1", t, json{{"name", "x"}}), 400, "sites");
}

// The engine asked for reaches both ends, and is kept with the session.
TEST_F(RestTest, DelaySessionEngineReachesBothEdges) {
  const auto t = NewTenant("acme");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  auto r = Call("POST", "/api/v1/delay-sessions", t,
                json{{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}, {"engine", "userspace"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body["engine"], "userspace");
  EXPECT_EQ(edges_.Edge("edge-a")->sessions.at({pb::STAMP_ROLE_SENDER, 1}).engine(), pb::STAMP_ENGINE_USERSPACE);
  EXPECT_EQ(edges_.Edge("edge-b")->sessions.at({pb::STAMP_ROLE_REFLECTOR, 1}).engine(), pb::STAMP_ENGINE_USERSPACE);
  r = Call("POST", "/api/v1/delay-sessions", t,
           json{{"slice", "sl1"}, {"sender", "edge-b"}, {"reflector", "edge-a"}, {"engine", "ebpf"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(edges_.Edge("edge-b")->sessions.at({pb::STAMP_ROLE_SENDER, 2}).engine(), pb::STAMP_ENGINE_EBPF);
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/ds2", t).body["engine"], "ebpf");
}

TEST_F(RestTest, DelaySessionLifecycle) {
  const auto t = NewTenant("acme");
  const auto t2 = NewTenant("globex");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  auto r = Call("POST", "/api/v1/delay-sessions", t,
                json{{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}, {"interval_ms", 100},
                     {"timestamp_format", "ptp"}, {"reflector_mode", "stateful"}, {"authenticated", true}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body["id"], "ds1");
  EXPECT_EQ(r.body["running"], true);
  EXPECT_FALSE(r.body.contains("auth_key_hex"));
  auto a = edges_.Edge("edge-a");
  auto b = edges_.Edge("edge-b");
  const auto& sp = a->sessions.at({pb::STAMP_ROLE_SENDER, 1});
  EXPECT_EQ(sp.source_address(), "fc00:0:a::1");
  EXPECT_EQ(sp.peer_address(), "fc00:0:b::1");
  ASSERT_EQ(sp.segments_size(), 1);
  EXPECT_EQ(sp.segments(0), "fc00:0:1::e");  // the slice's a->b path
  EXPECT_EQ(sp.interval_ms(), 100u);
  EXPECT_EQ(sp.timestamp_format(), pb::TIMESTAMP_FORMAT_PTPV2);
  EXPECT_EQ(sp.authentication_mode(), pb::AUTHENTICATION_MODE_HMAC_SHA_256);
  EXPECT_EQ(sp.auth_key().key().size(), 32u);
  const auto& rp = b->sessions.at({pb::STAMP_ROLE_REFLECTOR, 1});
  EXPECT_EQ(rp.segments(0), "fc00:0:2::e");  // the slice's b->a path
  EXPECT_EQ(rp.reflector_mode(), pb::SESSION_REFLECTOR_MODE_STATEFUL);
  EXPECT_EQ(rp.auth_key().key(), sp.auth_key().key());
  EXPECT_EQ(sp.engine(), pb::STAMP_ENGINE_UNSPECIFIED) << "auto: the edge picks";
  EXPECT_EQ(r.body["engine"], "auto");
  EXPECT_TRUE(a->running.count({pb::STAMP_ROLE_SENDER, 1}));
  EXPECT_TRUE(b->running.count({pb::STAMP_ROLE_REFLECTOR, 1}));

  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions", t).body.size(), 1u);
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions", t2).body.size(), 0u);
  ExpectError(Call("GET", "/api/v1/delay-sessions/ds1", t2), 404, "id");
  ExpectError(Call("GET", "/api/v1/delay-sessions/ds1/stats", t2), 404, "id");
  ExpectError(Call("POST", "/api/v1/delay-sessions/ds1/stop", t2), 404, "id");
  ExpectError(Call("DELETE", "/api/v1/delay-sessions/ds1", t2), 404, "id");

  EXPECT_EQ(Call("POST", "/api/v1/delay-sessions/ds1/stop", t).body["running"], false);
  EXPECT_FALSE(a->running.count({pb::STAMP_ROLE_SENDER, 1}));
  EXPECT_EQ(Call("POST", "/api/v1/delay-sessions/ds1/start", t).body["running"], true);
  EXPECT_TRUE(a->running.count({pb::STAMP_ROLE_SENDER, 1}));
  ExpectError(Call("DELETE", "/api/v1/slices/sl1", t), 409, "id");  // still measured
  EXPECT_EQ(Call("DELETE", "/api/v1/delay-sessions/ds1", t).status, 204);
  EXPECT_TRUE(a->sessions.empty());
  EXPECT_TRUE(b->sessions.empty());
  ExpectError(Call("GET", "/api/v1/delay-sessions/ds1", t), 404, "id");
  EXPECT_EQ(Call("DELETE", "/api/v1/slices/sl1", t).status, 204);
  EXPECT_TRUE(a->slices.empty());
  EXPECT_TRUE(b->slices.empty());
}

TEST_F(RestTest, BadSessionsAreRefusedByFieldAndChangeNothing) {
  const auto t = NewTenant("acme");
  const auto t2 = NewTenant("globex");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  const auto before = Snapshot();
  const json good = {{"slice", "sl1"}, {"sender", "edge-a"}, {"reflector", "edge-b"}};
  const BodyCase cases[] = {
      {[](json& b) { b.erase("slice"); }, 400, "slice"},
      {[](json& b) { b["slice"] = "sl9"; }, 404, "slice"},
      {[](json& b) { b["sender"] = "edge-c"; }, 400, "sender"},
      {[](json& b) { b["reflector"] = "edge-a"; }, 400, "reflector"},
      {[](json& b) { b["interval_ms"] = 5; }, 400, "interval_ms"},
      {[](json& b) { b["interval_ms"] = "fast"; }, 400, "interval_ms"},
      {[](json& b) { b["timestamp_format"] = "gps"; }, 400, "timestamp_format"},
      {[](json& b) { b["reflector_mode"] = "clever"; }, 400, "reflector_mode"},
      {[](json& b) { b["authenticated"] = "yes"; }, 400, "authenticated"},
      {[](json& b) { b["engine"] = "fpga"; }, 400, "engine"},
      {[](json& b) { b["engine"] = "ebpf"; b["authenticated"] = true; }, 400, "engine"},
      {[](json& b) { b["follow_up_telemetry"] = 1; }, 400, "follow_up_telemetry"},
      {[](json& b) { b["engine"] = "ebpf"; b["follow_up_telemetry"] = true; }, 400, "follow_up_telemetry"},
  };
  for (const auto& c : cases) {
    json body = good;
    c.change(body);
    ExpectError(Call("POST", "/api/v1/delay-sessions", t, body), c.status, c.field);
  }
  ExpectError(Call("POST", "/api/v1/delay-sessions", t2, good), 404, "slice");  // not its slice
  // the sender edge refuses: the reflector side is undone
  edges_.Edge("edge-a")->FailWith("Create:sender", kGrpcInvalidArgument);
  ExpectError(Call("POST", "/api/v1/delay-sessions", t, good), 422, "sender");
  EXPECT_TRUE(edges_.Edge("edge-b")->sessions.empty());
  EXPECT_TRUE(edges_.Edge("edge-a")->sessions.empty());
  EXPECT_EQ(Snapshot(), before);
}

pb::StampResult Result(uint32_t seq, uint32_t rseq, uint64_t t1, double direct_ms, double return_ms) {
  pb::StampResult r;
  r.set_ssid(1);
  r.set_sender_seq(seq);
  r.set_reflector_seq(rseq);
  r.set_t1_ns(t1);
  r.set_t2_ns(t1 + static_cast<uint64_t>(direct_ms * 1e6));
  r.set_t3_ns(r.t2_ns() + 30'000);
  r.set_t4_ns(r.t3_ns() + static_cast<uint64_t>(return_ms * 1e6));
  return r;
}

TEST_F(RestTest, PolledResultsBecomeSamplesStatsIntervalsAndMetrics) {
  const auto t = NewTenant("acme");
  SliceWithStatefulSession(t);
  // 40 packets over 4 s of 1 s intervals (TAI = UTC + offset); seq 13 lost outbound, seq 27
  // lost on the way back.
  const uint64_t base = static_cast<uint64_t>((NowUtcMs() / 1000 - 60) * 1000 + ctl_->tai_offset_s() * 1000LL) * 1'000'000ULL;
  auto a = edges_.Edge("edge-a");
  std::vector<double> direct;
  uint32_t rseq = 0;
  for (uint32_t seq = 0; seq < 40; ++seq) {
    if (seq == 13) continue;
    const uint32_t r = rseq++;
    if (seq == 27) continue;
    const double d = 12.0 + (seq % 5) * 0.1;
    direct.push_back(d);
    auto res = Result(seq, r, base + seq * 100'000'000ULL, d, 4.0);
    if (seq == 1) res.set_flags(1 << 4);  // the reflector said its clock is not synchronised
    if (seq == 2) {  // the reply really left 0.5 ms after its T3: the return delay is still 4 ms
      res.set_t4_ns(res.t4_ns() + 500'000);
      res.set_t3_follow_up_ns(res.t3_ns() + 500'000);
    }
    if (seq == 3) res.set_t3_follow_up_ns(res.t4_ns() + 1);  // cannot be: not used
    if (seq == 4) res.set_flags(1 << 1 | 1 << 2);            // a TLV with U, one with M
    a->Push(1, res);
  }
  ctl_->PollOnce();
  auto samples = Call("GET", "/api/v1/delay-sessions/ds1/results?limit=5", t);
  ASSERT_EQ(samples.status, 200);
  ASSERT_EQ(samples.body["samples"].size(), 5u);
  EXPECT_EQ(samples.body["samples"][0]["reflector_synchronized"], true);
  EXPECT_EQ(samples.body["samples"][1]["reflector_synchronized"], false) << "kept with the sample";
  EXPECT_EQ(samples.body["samples"][2]["t3_follow_up"], true);
  EXPECT_NEAR(samples.body["samples"][2]["return_ms"].get<double>(), 4.0, 1e-6) << "from the follow-up time";
  EXPECT_EQ(samples.body["samples"][3]["t3_follow_up"], false);
  const auto replies = Call("GET", "/api/v1/delay-sessions/ds1", t).body["replies"];
  EXPECT_EQ(replies["follow_up"], 1);
  EXPECT_EQ(replies["reflector_unsynchronized"], 1);
  EXPECT_EQ(replies["tlv_unrecognized"], 1);
  EXPECT_EQ(replies["tlv_malformed"], 1);
  EXPECT_EQ(replies["tlv_integrity_failed"], 0);
  EXPECT_NEAR(samples.body["samples"][0]["direct_ms"].get<double>(), 12.0, 1e-6);
  EXPECT_NEAR(samples.body["samples"][0]["rtt_ms"].get<double>(), 16.0, 1e-6);
  EXPECT_EQ(samples.body["samples"][0]["t1_ns"], std::to_string(base));
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/ds1/results?limit=10000", t).body["samples"].size(), 38u);

  auto stats = Call("GET", "/api/v1/delay-sessions/ds1/stats", t);
  ASSERT_EQ(stats.status, 200) << stats.body;
  double mean = 0;
  for (double d : direct) mean += d;
  mean /= static_cast<double>(direct.size());
  EXPECT_EQ(stats.body["samples"], 38);
  EXPECT_NEAR(stats.body["direct"]["mean_ms"].get<double>(), mean, 1e-6);
  EXPECT_NEAR(stats.body["direct"]["min_ms"].get<double>(), 12.0, 1e-6);
  EXPECT_NEAR(stats.body["direct"]["max_ms"].get<double>(), 12.4, 1e-6);
  EXPECT_NEAR(stats.body["return"]["mean_ms"].get<double>(), 4.0, 1e-6);
  EXPECT_NEAR(stats.body["direct"]["p50_ms"].get<double>(), 12.2, 12.2 * 0.008);
  EXPECT_EQ(stats.body["packets"]["sent"], 40);
  EXPECT_EQ(stats.body["packets"]["received"], 38);
  EXPECT_EQ(stats.body["packets"]["lost_direct"], 1);
  EXPECT_EQ(stats.body["packets"]["lost_return"], 1);

  auto iv = Call("GET", "/api/v1/delay-sessions/ds1/intervals", t);
  ASSERT_EQ(iv.status, 200);
  ASSERT_EQ(iv.body["intervals"].size(), 4u);
  EXPECT_EQ(iv.body["intervals"][0]["open"], false);  // closed: 60 s in the past
  EXPECT_EQ(iv.body["intervals"][1]["packets"]["lost_direct"], 1);
  EXPECT_EQ(iv.body["intervals"][2]["packets"]["lost_return"], 1);
  EXPECT_EQ(iv.body["intervals"][0]["samples"], 10);

  // Polls that bring nothing write nothing: no transaction per session per poll.
  const uint64_t writes = store_->BatchesWritten();
  for (int i = 0; i < 5; ++i) ctl_->PollOnce();
  EXPECT_EQ(store_->BatchesWritten(), writes);

  ExpectError(Call("GET", "/api/v1/delay-sessions/ds1/results?since=yesterday", t), 400, "since");
  ExpectError(Call("GET", "/api/v1/delay-sessions/ds1/results?limit=0", t), 400, "limit");
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/ds1/stats?since=1s", t).body["samples"], 0);

  auto m = client_->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("segwan_devices_connected 3"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("segwan_samples_stored_total 38"), std::string::npos);
  EXPECT_NE(m->body.find(R"(segwan_delay_seconds_count{session="ds1",tenant="t1",direction="direct"} 38)"),
            std::string::npos);
  EXPECT_NE(m->body.find(R"(segwan_delay_seconds_bucket{session="ds1",tenant="t1",direction="direct",le="0.01"} 0)"),
            std::string::npos);
  EXPECT_NE(m->body.find(R"(segwan_delay_seconds_bucket{session="ds1",tenant="t1",direction="direct",le="0.025"} 38)"),
            std::string::npos);

  // A poll that cannot reach the sender counts an error and shows it on the session.
  a->FailWith("Results", kGrpcUnavailable);
  ctl_->PollOnce();
  EXPECT_FALSE(Call("GET", "/api/v1/delay-sessions/ds1", t).body["error"].is_null());
  EXPECT_NE(client_->Get("/metrics")->body.find("segwan_poll_errors_total 1"), std::string::npos);
}

TEST_F(RestTest, ARestartedControllerKeepsEverythingAndCarriesOn) {
  const auto t = NewTenant("acme");
  SliceWithStatefulSession(t);
  const uint64_t base = (static_cast<uint64_t>(NowUtcMs()) + ctl_->tai_offset_s() * 1000ULL) * 1'000'000ULL;
  for (uint32_t seq = 0; seq < 10; ++seq) edges_.Edge("edge-a")->Push(1, Result(seq, seq, base + seq * 1000, 5, 5));
  ctl_->PollOnce();
  Shutdown();  // as abrupt as it gets in-process: nothing is flushed on the way out
  Boot();
  EXPECT_EQ(Call("GET", "/api/v1/slices/sl1", t).status, 200);
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/ds1", t).body["running"], true);
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/ds1/results?limit=10000", t).body["samples"].size(), 10u);
  // The open interval was rebuilt from the stored samples: stats still see them.
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/ds1/stats", t).body["samples"], 10);
  // The edges re-register with the new controller; their sessions are still there.
  for (const char* x : {"a", "b"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
  ctl_->RunQueued();
  // The sender edge restarted meanwhile and counts from 0 again: numbers keep growing.
  edges_.Edge("edge-a")->Forget();
  ASSERT_TRUE(ctl_->Register(LabRegistration("a", kDeviceToken), "test"));
  ctl_->RunQueued();
  edges_.Edge("edge-a")->Push(1, Result(0, 0, base + 20'000, 5, 5));
  ctl_->PollOnce();
  auto s = Call("GET", "/api/v1/delay-sessions/ds1/results?limit=10000", t).body["samples"];
  ASSERT_EQ(s.size(), 11u);
  EXPECT_EQ(s[10]["seq"], 10);
  auto stats = Call("GET", "/api/v1/delay-sessions/ds1/stats", t).body;
  EXPECT_EQ(stats["packets"]["sent"], 11);
  EXPECT_EQ(stats["packets"]["lost"], 0);
}

TEST_F(RestTest, LossSessionsMonitorTheSlicesFlowAndCloseEachPeriod) {
  const auto t = NewTenant("acme");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  auto r = Call("POST", "/api/v1/loss-sessions", t,
                json{{"slice", "sl1"}, {"from", "edge-a"}, {"to", "edge-b"}, {"period_ms", 2000}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body["id"], "ls1");
  const std::vector<std::string> flow{"fc00:0:1::e", "fc00:0:b:1::d6"};  // a->b through p1, to b's End.DT6
  EXPECT_EQ(r.body["segments"], json(flow));
  auto a = edges_.Edge("edge-a");
  auto b = edges_.Edge("edge-b");
  ASSERT_EQ(a->loss.count({flow, pb::LOSS_DIRECTION_INGRESS}), 1u);
  ASSERT_EQ(b->loss.count({flow, pb::LOSS_DIRECTION_EGRESS}), 1u);
  auto& tx = a->loss[{flow, pb::LOSS_DIRECTION_INGRESS}];
  auto& rx = b->loss[{flow, pb::LOSS_DIRECTION_EGRESS}];
  EXPECT_EQ(tx.period_ms, 2000u);

  // IPv4 is another flow: to b's End.DX4
  auto v4 = Call("POST", "/api/v1/loss-sessions", t,
                 json{{"slice", "sl1"}, {"from", "edge-a"}, {"to", "edge-b"}, {"family", "ipv4"}});
  ASSERT_EQ(v4.status, 201) << v4.body;
  EXPECT_EQ(v4.body["segments"][1], "fc00:0:b:1::d4");

  // Period 0 (colour 0) closes half a period after the switch: 100 sent, 97 received.
  const uint64_t now_tai = (static_cast<uint64_t>(NowUtcMs()) + ctl_->tai_offset_s() * 1000ULL) * 1'000'000ULL;
  tx.packets[0] = 100;
  rx.packets[0] = 97;
  tx.colour = 1;
  tx.period_index = 1;
  tx.switched_at_ns = now_tai;  // just now: not final yet
  tx.packets[1] = 5;            // the new colour already counts
  ctl_->PollOnce();
  EXPECT_EQ(Call("GET", "/api/v1/loss-sessions/ls1/periods", t).body["periods"].size(), 0u);
  tx.switched_at_ns = now_tai - 1'100'000'000ULL;  // 1.1 s ago: more than half of 2 s
  ctl_->PollOnce();
  auto periods = Call("GET", "/api/v1/loss-sessions/ls1/periods", t).body["periods"];
  ASSERT_EQ(periods.size(), 1u);
  EXPECT_EQ(periods[0]["index"], 0);
  EXPECT_EQ(periods[0]["colour"], 0);
  EXPECT_EQ(periods[0]["sent"], 100);
  EXPECT_EQ(periods[0]["received"], 97);
  EXPECT_EQ(periods[0]["lost"], 3);
  EXPECT_NEAR(periods[0]["loss_ratio"].get<double>(), 0.03, 1e-9);
  ctl_->PollOnce();  // nothing new
  EXPECT_EQ(Call("GET", "/api/v1/loss-sessions/ls1/periods", t).body["periods"].size(), 1u);

  // Period 1 (colour 1): the counters are cumulative; the controller takes differences.
  tx.packets[1] = 80;
  rx.packets[1] = 80;
  tx.colour = 0;
  tx.period_index = 2;
  tx.packets[0] = 130;  // period 2 is being painted colour 0 again
  rx.packets[0] = 120;
  ctl_->PollOnce();
  periods = Call("GET", "/api/v1/loss-sessions/ls1/periods", t).body["periods"];
  ASSERT_EQ(periods.size(), 2u);
  EXPECT_EQ(periods[1]["colour"], 1);
  EXPECT_EQ(periods[1]["sent"], 80);
  EXPECT_EQ(periods[1]["lost"], 0);
  tx.colour = 1;
  tx.period_index = 3;
  ctl_->PollOnce();  // period 2, colour 0: 130 - 100 sent, 120 - 97 received
  periods = Call("GET", "/api/v1/loss-sessions/ls1/periods", t).body["periods"];
  ASSERT_EQ(periods.size(), 3u);
  EXPECT_EQ(periods[2]["sent"], 30);
  EXPECT_EQ(periods[2]["received"], 23);
  EXPECT_EQ(periods[2]["lost"], 7);
  EXPECT_EQ(Call("GET", "/api/v1/loss-sessions/ls1", t).body["last_period"]["index"], 2);

  // A restarted controller carries on from the stored cursor once the edges are back.
  Shutdown();
  Boot();
  EXPECT_EQ(Call("GET", "/api/v1/loss-sessions/ls1", t).body["last_period"]["index"], 2);  // restored
  for (const char* x : {"a", "b"}) ASSERT_TRUE(ctl_->Register(LabRegistration(x, kDeviceToken), "test"));
  ctl_->RunQueued();  // reconciliation starts the flows again: idempotent, counters carry on
  tx.packets[1] = 90;
  rx.packets[1] = 88;
  tx.colour = 0;
  tx.period_index = 4;
  ctl_->PollOnce();
  periods = Call("GET", "/api/v1/loss-sessions/ls1/periods", t).body["periods"];
  ASSERT_EQ(periods.size(), 4u);
  EXPECT_EQ(periods[3]["sent"], 10);
  EXPECT_EQ(periods[3]["lost"], 2);

  // The slice cannot go, nor its monitored path change, while the flow is measured.
  ExpectError(Call("DELETE", "/api/v1/slices/sl1", t), 409, "id");
  auto repinned = SliceBody();
  repinned["paths"][0]["waypoints"] = {"fc00:0:2::e"};
  ExpectError(Call("PUT", "/api/v1/slices/sl1", t, repinned), 409, "sites");
  ExpectError(Call("GET", "/api/v1/loss-sessions/ls1", NewTenant("globex")), 404, "id");
  EXPECT_EQ(Call("DELETE", "/api/v1/loss-sessions/ls1", t).status, 204);
  EXPECT_EQ(a->loss.count({flow, pb::LOSS_DIRECTION_INGRESS}), 0u);
  EXPECT_EQ(b->loss.count({flow, pb::LOSS_DIRECTION_EGRESS}), 0u);
  ExpectError(Call("GET", "/api/v1/loss-sessions/ls1/periods", t), 404, "id");
}

TEST_F(RestTest, BadLossSessionsAreRefusedByFieldAndChangeNothing) {
  const auto t = NewTenant("acme");
  ASSERT_EQ(Call("POST", "/api/v1/slices", t, SliceBody()).status, 201);
  const json good = {{"slice", "sl1"}, {"from", "edge-a"}, {"to", "edge-b"}};
  const BodyCase cases[] = {
      {[](json& b) { b.erase("from"); }, 400, "from"},
      {[](json& b) { b["slice"] = "sl9"; }, 404, "slice"},
      {[](json& b) { b["from"] = "edge-c"; }, 400, "from"},
      {[](json& b) { b["to"] = "edge-a"; }, 400, "to"},
      {[](json& b) { b["family"] = "ipx"; }, 400, "family"},
      {[](json& b) { b["period_ms"] = 10; }, 400, "period_ms"},
  };
  const auto before = Call("GET", "/api/v1/loss-sessions", t).body;
  for (const auto& c : cases) {
    json body = good;
    c.change(body);
    ExpectError(Call("POST", "/api/v1/loss-sessions", t, body), c.status, c.field);
  }
  // an edge that refuses: the other end is undone. The egress counts first, so that no packet
  // the ingress marks goes uncounted: an egress that refuses means the ingress was never asked.
  edges_.Edge("edge-b")->FailWith("StartLoss", kGrpcInvalidArgument);
  ExpectError(Call("POST", "/api/v1/loss-sessions", t, good), 422, "to");
  EXPECT_TRUE(edges_.Edge("edge-a")->loss.empty());
  for (const auto& call : edges_.Edge("edge-a")->Calls()) EXPECT_NE(call, "StartLoss:ingress");
  edges_.Edge("edge-b")->ClearFailures();
  edges_.Edge("edge-a")->FailWith("StartLoss", kGrpcInvalidArgument);
  ExpectError(Call("POST", "/api/v1/loss-sessions", t, good), 422, "from");
  EXPECT_TRUE(edges_.Edge("edge-b")->loss.empty());
  edges_.Edge("edge-a")->ClearFailures();
  // an edge without the programs says so
  auto nocap = LabRegistration("b", kDeviceToken);
  nocap.clear_capabilities();
  ASSERT_TRUE(ctl_->Register(nocap, "test"));
  ExpectError(Call("POST", "/api/v1/loss-sessions", t, good), 422, "to");
  EXPECT_EQ(Call("GET", "/api/v1/loss-sessions", t).body, before);
}

TEST_F(RestTest, SteeringPoliciesProbeTheirCandidatesAndStayWithTheirTenant) {
  const auto acme = NewTenant("acme");
  const auto globex = NewTenant("globex");
  ASSERT_EQ(Call("POST", "/api/v1/slices", acme, SliceBody()).status, 201);
  auto sla = Call("POST", "/api/v1/sla-classes", acme, json{{"name", "voice"}, {"limits", {{"delay_ms", 10}, {"loss_pct", 1}}}});
  ASSERT_EQ(sla.status, 201) << sla.body;
  EXPECT_EQ(sla.body["limits"]["delay_ms"], 10);
  EXPECT_TRUE(sla.body["limits"]["jitter_ms"].is_null());
  const std::string sla_id = sla.body["id"];
  ExpectError(Call("POST", "/api/v1/sla-classes", acme, json{{"name", "x"}, {"limits", {{"delay_ms", "ten"}}}}), 400,
              "limits.delay_ms");

  const json body = {{"slice", "sl1"}, {"sla", sla_id}, {"pairs", {{{"from", "edge-a"}, {"to", "edge-b"}}}},
                     {"probe", {{"interval_ms", 100}, {"window_ms", 300}, {"windows", 3}, {"hold_down_s", 30}}}};
  const auto before = Snapshot();
  json bad = body;
  bad["probe"]["windows"] = 0;
  ExpectError(Call("POST", "/api/v1/steering-policies", acme, bad), 400, "probe.windows");
  bad = body;
  bad["candidates"] = {{{"name", "x"}, {"waypoints", {7}}}};
  ExpectError(Call("POST", "/api/v1/steering-policies", acme, bad), 400, "candidates[0].waypoints[0]");
  ExpectError(Call("POST", "/api/v1/steering-policies", globex, body), 404, "slice");
  EXPECT_EQ(Snapshot(), before) << "refused requests change nothing";

  auto r = Call("POST", "/api/v1/steering-policies", acme, body);
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = r.body["id"];
  ASSERT_EQ(r.body["directions"].size(), 1u);
  const auto& d = r.body["directions"][0];
  // The slice pins a->b through p1: that is the preferred candidate, the underlay's route next.
  EXPECT_EQ(d["active"], "slice");
  ASSERT_EQ(d["candidates"].size(), 2u);
  EXPECT_EQ(d["candidates"][0]["waypoints"], json({"fc00:0:1::e"}));
  EXPECT_EQ(d["candidates"][1]["name"], "direct");
  EXPECT_TRUE(d["candidates"][0]["last_window"].is_null());
  const std::string probe = d["candidates"][1]["session"];
  auto s = Call("GET", "/api/v1/delay-sessions/" + probe, acme);
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ(s.body["steering"]["policy"], id);
  EXPECT_EQ(s.body["steering"]["candidate"], "direct");
  ExpectError(Call("DELETE", "/api/v1/delay-sessions/" + probe, acme), 409, "id");
  ExpectError(Call("DELETE", "/api/v1/sla-classes/" + sla_id, acme), 409, "id");

  EXPECT_EQ(Call("GET", "/api/v1/steering-policies/" + id, globex).status, 404);
  EXPECT_TRUE(Call("GET", "/api/v1/steering-policies", globex).body.empty());
  EXPECT_TRUE(Call("GET", "/api/v1/sla-classes", globex).body.empty());
  auto events = Call("GET", "/api/v1/steering-events?limit=10", acme);
  ASSERT_EQ(events.status, 200);
  EXPECT_TRUE(events.body["events"].empty());
  EXPECT_TRUE(events.body["next_before"].is_null());
  ExpectError(Call("GET", "/api/v1/steering-events?before=x", acme), 400, "before");

  EXPECT_EQ(Call("DELETE", "/api/v1/steering-policies/" + id, acme).status, 204);
  EXPECT_EQ(Call("GET", "/api/v1/delay-sessions/" + probe, acme).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/sla-classes/" + sla_id, acme).status, 204);
}

TEST(ParseSince, MillisecondsOrASpanBack) {
  EXPECT_EQ(*ParseSince("", 1'000'000), 0);
  EXPECT_EQ(*ParseSince("1234", 1'000'000), 1234);
  EXPECT_EQ(*ParseSince("5m", 1'000'000), 700'000);
  EXPECT_EQ(*ParseSince("2h", 10'000'000), 2'800'000);
  EXPECT_EQ(ParseSince("5y", 0).error().field, "since");
  EXPECT_FALSE(ParseSince("-5", 0));
  EXPECT_EQ(IsoTime(1'795'475'570'652), "2026-11-23T23:12:50.652Z");
}

}  // namespace
}  // namespace segwan::controller
