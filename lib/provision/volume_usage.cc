#include "lib/provision/volume_usage.h"

#include "absl/strings/str_cat.h"
#include "lib/core/volume.h"

namespace xenctl::provision {

void VolumeUsage::record(const core::DomainSpec& spec, int64_t domid) {
  Entry e{domid, {}};
  for (const auto& d : spec.disks)
    if (core::isVolumeTarget(d.target)) e.disks.push_back(d);
  std::lock_guard lock(mu_);
  by_domain_[spec.name] = std::move(e);
}

void VolumeUsage::setDomid(const std::string& domain, int64_t domid) {
  std::lock_guard lock(mu_);
  if (auto it = by_domain_.find(domain); it != by_domain_.end()) it->second.domid = domid;
}

void VolumeUsage::release(const std::string& domain, int64_t domid) {
  std::lock_guard lock(mu_);
  auto it = by_domain_.find(domain);
  if (it == by_domain_.end()) return;
  if (domid >= 0 && it->second.domid != domid) return;
  by_domain_.erase(it);
}

std::map<std::string, std::string> VolumeUsage::users() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& [name, e] : by_domain_)
    for (const auto& d : e.disks) out.emplace(d.target, name);
  return out;
}

std::optional<std::string> VolumeUsage::userOf(const std::string& target) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : by_domain_)
    for (const auto& d : e.disks)
      if (d.target == target) return name;
  return std::nullopt;
}

std::vector<VolumeUsage::Use> VolumeUsage::usesOf(const std::string& target, const std::string& except) const {
  std::lock_guard lock(mu_);
  std::vector<Use> out;
  for (const auto& [name, e] : by_domain_) {
    if (name == except) continue;
    for (const auto& d : e.disks)
      if (d.target == target) out.push_back({name, d});
  }
  return out;
}

Result<VolumeUsage::DeleteHold> VolumeUsage::holdForDelete(const std::string& target, std::string_view step) {
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : by_domain_)
    for (const auto& d : e.disks)
      if (d.target == target)
        return absl::FailedPreconditionError(
            absl::StrCat(av(step), ": running domain '", name, "' uses it; shut the domain down first"));
  ++deleting_[target];
  return DeleteHold(this, target);
}

VolumeUsage::DeleteHold::~DeleteHold() {
  if (!usage_) return;
  std::lock_guard lock(usage_->mu_);
  if (auto it = usage_->deleting_.find(target_); it != usage_->deleting_.end() && --it->second <= 0)
    usage_->deleting_.erase(it);
}

bool VolumeUsage::deleting(const std::string& target) const {
  std::lock_guard lock(mu_);
  return deleting_.count(target) != 0;
}

}  // namespace xenctl::provision
