#include "edge-manager/api/edge_service.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "edge-manager/api/convert.h"
#include "segwan/log.h"

namespace segwan::edge {

namespace pb = segwan::v1;

grpc::Status ToGrpc(const Error& e) {
  if (!e.field.empty()) return {grpc::StatusCode::INVALID_ARGUMENT, e.ToString()};
  switch (e.code) {
    case EINVAL:
    case EOPNOTSUPP:
    case ENODEV:
    case EEXIST:
      return {grpc::StatusCode::FAILED_PRECONDITION, e.message};
    case EPERM:
    case EACCES:
      return {grpc::StatusCode::PERMISSION_DENIED, e.message};
    default:
      return {grpc::StatusCode::INTERNAL, e.message};
  }
}

static pb::SliceMode ModeToProto(SliceMode m) {
  return m == SliceMode::kVrf ? pb::SLICE_MODE_VRF : pb::SLICE_MODE_TABLE;
}

EdgeService::EdgeService(netlink::Dataplane* dp, SliceManager* slices, InterfaceRoles roles,
                         std::string state_dir)
    : dp_(dp), slices_(slices), roles_(std::move(roles)), state_dir_(std::move(state_dir)) {}

std::string EdgeService::SlicePath(const std::string& id) const {
  return state_dir_ + "/slices/" + id + ".pb";
}

Result<int> EdgeService::RestoreSavedSlices() {
  if (state_dir_.empty()) return 0;
  const std::string dir = state_dir_ + "/slices";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  int restored = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 4 || name.substr(name.size() - 3) != ".pb") continue;
    std::ifstream in(dir + "/" + name, std::ios::binary);
    pb::Slice slice;
    if (!slice.ParseFromIstream(&in)) {
      SEGWAN_LOG(kWarn, "state") << "ignoring unreadable " << dir << "/" << name;
      continue;
    }
    auto spec = SliceFromProto(slice);
    if (!spec) continue;
    if (auto r = slices_->Apply(*spec); r) {
      ++restored;
    } else {
      SEGWAN_LOG(kWarn, "state") << "cannot restore slice " << spec->id << ": " << r.error().ToString();
    }
  }
  closedir(d);
  return restored;
}

grpc::Status EdgeService::ListInterfaces(grpc::ServerContext*, const pb::ListInterfacesRequest*,
                                         pb::ListInterfacesResponse* out) {
  auto links = dp_->Links();
  if (!links) return ToGrpc(links.error());
  for (auto& i : InterfacesToProto(*links, roles_)) *out->add_interfaces() = std::move(i);
  return grpc::Status::OK;
}

grpc::Status EdgeService::ApplySlice(grpc::ServerContext*, const pb::ApplySliceRequest* req,
                                     pb::ApplySliceResponse* out) {
  if (!req->has_slice()) return {grpc::StatusCode::INVALID_ARGUMENT, "slice: is required"};
  const auto want = req->slice().mode();
  if (want != pb::SLICE_MODE_UNSPECIFIED && want != ModeToProto(slices_->mode())) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            std::string("slice.mode: this edge runs slices in ") + SliceModeName(slices_->mode()) +
                " mode"};
  }
  auto spec = SliceFromProto(req->slice());
  if (!spec) return ToGrpc(spec.error());
  auto counts = slices_->Apply(*spec);
  if (!counts) return ToGrpc(counts.error());
  if (!state_dir_.empty()) {
    mkdir(state_dir_.c_str(), 0700);
    mkdir((state_dir_ + "/slices").c_str(), 0700);
    const std::string path = SlicePath(spec->id), tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      SliceToProto(*spec).SerializeToOstream(&f);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      SEGWAN_LOG(kWarn, "state") << "cannot save " << path;
    }
  }
  out->set_mode(ModeToProto(slices_->mode()));
  out->set_routes_added(counts->added);
  out->set_routes_removed(counts->removed);
  return grpc::Status::OK;
}

grpc::Status EdgeService::RemoveSlice(grpc::ServerContext*, const pb::RemoveSliceRequest* req,
                                      pb::RemoveSliceResponse* out) {
  if (!IsValidIdentifier(req->id(), 32)) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "id: must match [a-z0-9-]{1,32}"};
  }
  auto counts = slices_->Remove(req->id());
  if (!counts) return ToGrpc(counts.error());
  if (!state_dir_.empty()) unlink(SlicePath(req->id()).c_str());
  out->set_routes_removed(counts->removed);
  return grpc::Status::OK;
}

grpc::Status EdgeService::GetState(grpc::ServerContext*, const pb::GetStateRequest*,
                                   pb::GetStateResponse* out) {
  for (const auto& s : slices_->Slices()) *out->add_slices() = SliceToProto(s);
  auto routes = dp_->Routes(netlink::kProtoSegwan);
  if (!routes) return ToGrpc(routes.error());
  for (const auto& r : *routes) {
    auto* o = out->add_routes();
    o->set_table(r.table);
    o->set_prefix(r.dst.ToString());
    o->set_description(r.ToString());
  }
  out->set_mode(ModeToProto(slices_->mode()));
  return grpc::Status::OK;
}

}  // namespace segwan::edge
