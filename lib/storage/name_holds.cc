#include "lib/storage/name_holds.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace xenctl::storage {

NameHolds::Hold::Hold(NameHolds* owner, std::string exclusive, std::string shared)
    : owner_(owner), exclusive_(std::move(exclusive)), shared_(std::move(shared)) {}

NameHolds::Hold::Hold(Hold&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), exclusive_(std::move(o.exclusive_)), shared_(std::move(o.shared_)) {}

NameHolds::Hold::~Hold() {
  if (!owner_) return;
  std::lock_guard lock(owner_->mu_);
  if (!exclusive_.empty()) owner_->busy_.erase(exclusive_);
  if (!shared_.empty() && --owner_->busy_[shared_] == 0) owner_->busy_.erase(shared_);
}

Result<NameHolds::Hold> NameHolds::hold(const std::string& exclusive, const std::string& shared,
                                        const std::function<std::string(const std::string&)>& who) {
  std::lock_guard lock(mu_);
  auto busy = [&](const std::string& n) {
    return absl::FailedPreconditionError(
        absl::StrCat(who(n), " is busy with another operation; retry when it has finished (`vmm ops`)"));
  };
  if (!exclusive.empty() && busy_.count(exclusive)) return busy(exclusive);
  if (!shared.empty() && busy_.count(shared) && busy_[shared] < 0) return busy(shared);
  if (!exclusive.empty()) busy_[exclusive] = -1;
  if (!shared.empty()) ++busy_[shared];
  return Hold(this, exclusive, shared);
}

}  // namespace xenctl::storage
