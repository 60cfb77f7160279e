#include "edge-os/tenants/tenants.h"

#include "edge-os/controller/errors.h"
#include "edge-os/controller/tokens.h"
#include "segwan/clock.h"
#include "segwan/log.h"
#include "segwan/text.h"

namespace segwan::controller {

Status Tenants::Load() {
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  std::lock_guard lock(mu_);
  for (const auto& t : *tenants) by_token_.emplace(t.token_sha256, t.id);
  return Status::Ok();
}

std::optional<Principal> Tenants::Authenticate(const std::string& token) {
  if (token.empty()) return std::nullopt;
  if (!operator_token_.empty() && SameSecret(token, operator_token_)) return Principal{true, ""};
  std::lock_guard lock(mu_);
  auto it = by_token_.find(Sha256Hex(token));
  if (it != by_token_.end()) return Principal{false, it->second};
  return std::nullopt;
}

Result<std::pair<Tenant, std::string>> Tenants::Create(const Principal& p, const std::string& name) {
  if (!p.is_operator) return ApiError(kForbidden, "", "only the operator creates tenants");
  if (name.empty() || Utf8Length(name) > 64) return ApiError(kBadRequest, "name", "must be 1 to 64 characters");
  std::lock_guard create(create_mu_);
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  for (const auto& t : *tenants) {
    if (t.name == name) return ApiError(kConflict, "name", "a tenant named '" + name + "' exists");
  }
  auto number = store_->NextId("tenant");
  if (!number) return number.error();
  Tenant t;
  t.id = "t" + std::to_string(*number);
  t.name = name;
  const std::string token = RandomHex(24);
  t.token_sha256 = Sha256Hex(token);
  t.created_ms = NowUtcMs();
  if (auto st = store_->PutTenant(t); !st) return st.error();
  {
    std::lock_guard lock(mu_);
    by_token_.emplace(t.token_sha256, t.id);
  }
  SEGWAN_LOG(kInfo, "tenants") << "tenant " << t.id << " (" << name << ") created";
  return std::make_pair(t, token);
}

Result<std::vector<Tenant>> Tenants::List(const Principal& p) {
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  std::vector<Tenant> out;
  for (auto& t : *tenants) {
    if (p.Sees(t.id)) out.push_back(std::move(t));
  }
  return out;
}

Result<Tenant> Tenants::Owner(const Principal& p, const std::string& tenant_field) {
  if (!p.is_operator) {
    if (!tenant_field.empty() && tenant_field != p.tenant_id) {
      return ApiError(kBadRequest, "tenant", "a tenant creates objects only for itself");
    }
    return Tenant{p.tenant_id, "", "", 0};
  }
  if (tenant_field.empty()) return ApiError(kBadRequest, "tenant", "the operator must say on whose behalf");
  auto tenants = store_->Tenants();
  if (!tenants) return tenants.error();
  for (auto& t : *tenants) {
    if (t.id == tenant_field) return t;
  }
  return ApiError(kBadRequest, "tenant", "no tenant '" + tenant_field + "'");
}

}  // namespace segwan::controller
