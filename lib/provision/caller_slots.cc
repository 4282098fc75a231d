#include "lib/provision/caller_slots.h"

#include "absl/strings/str_cat.h"

namespace xenctl::provision {

Result<CallerSlots::Slot> CallerSlots::acquire(const std::string& key) {
  std::lock_guard lock(mu_);
  size_t& n = held_[key];
  if (n >= max_) {
    const size_t had = n;
    if (n == 0) held_.erase(key);
    return absl::ResourceExhaustedError(absl::StrCat("caller ", key, " has ", had, " ", what_,
                                                     " open, the limit per caller is ", max_, " (", setting_,
                                                     "); close one first"));
  }
  ++n;
  return Slot(this, key);
}

size_t CallerSlots::held(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  return it == held_.end() ? 0 : it->second;
}

void CallerSlots::release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = held_.find(key);
  if (it != held_.end() && --it->second == 0) held_.erase(it);
}

}  // namespace xenctl::provision
