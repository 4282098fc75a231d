// CallerSlots: a bound on what one caller holds open at once (the daemon's
// WatchEvents, WatchOperation and AttachConsole streams, each of which holds
// a server thread), so that one caller cannot exhaust the daemon for all.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "lib/core/status.h"

namespace xenctl::provision {

class CallerSlots {
 public:
  /// `what` names what is counted ("streams"), `setting` the configuration
  /// key of `max_per_caller`, both for the error.
  CallerSlots(size_t max_per_caller, std::string what, std::string setting)
      : max_(max_per_caller), what_(std::move(what)), setting_(std::move(setting)) {}

  /// Held while it lives; gives its slot back when destroyed.
  class Slot {
   public:
    Slot(Slot&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), key_(std::move(o.key_)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (owner_) owner_->release(key_);
    }

   private:
    friend class CallerSlots;
    Slot(CallerSlots* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    CallerSlots* owner_;
    std::string key_;
  };

  /// A slot for the caller `key` (provision::Caller::key()).
  /// RESOURCE_EXHAUSTED when it holds max_per_caller already, naming the
  /// caller, the limit and the setting.
  Result<Slot> acquire(const std::string& key);
  /// Slots `key` holds now.
  size_t held(const std::string& key) const;

 private:
  void release(const std::string& key);

  const size_t max_;
  const std::string what_, setting_;
  mutable std::mutex mu_;
  std::map<std::string, size_t> held_;  // no zero entries
};

}  // namespace xenctl::provision
