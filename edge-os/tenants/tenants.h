#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edge-os/controller/model.h"
#include "edge-os/store/store.h"
#include "segwan/result.h"

namespace segwan::controller {

// Tenants and who a bearer token speaks for. A tenant's token is kept only as its SHA-256;
// the token itself is shown once, when the tenant is made. Thread-safe.
class Tenants {
 public:
  explicit Tenants(Store* store) : store_(store) {}
  Status Load();

  void SetOperatorToken(std::string token) { operator_token_ = std::move(token); }
  std::optional<Principal> Authenticate(const std::string& token);
  // The tenant and its token (shown only here). Operator only.
  Result<std::pair<Tenant, std::string>> Create(const Principal& p, const std::string& name);
  Result<std::vector<Tenant>> List(const Principal& p);
  // On whose behalf an object is made: a tenant for itself, the operator for the tenant it
  // names in `tenant_field`.
  Result<Tenant> Owner(const Principal& p, const std::string& tenant_field);

 private:
  Store* store_;
  std::string operator_token_;
  std::mutex create_mu_;  // one creation at a time: names are unique
  std::mutex mu_;
  std::map<std::string, std::string> by_token_;  // token SHA-256 -> tenant id; only ever added to
};

}  // namespace segwan::controller
