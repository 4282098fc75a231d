// What WatchEvents streams: a change in a domain's life.
#pragma once

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "lib/core/domain.h"

namespace xenctl::core {

enum class DomainEventKind {
  kDefined, kStarted, kPaused, kUnpaused, kShutdown, kRebooted, kCrashed, kDestroyed,
  kDeleted, kResourcesChanged, kVanished,
  kEventsLost,  ///< the subscriber fell behind; events in between were dropped
};

/// "rebooted", "resources-changed" ...: the words xenctld's log uses.
std::string_view toString(DomainEventKind k);

struct DomainEvent {
  DomainEventKind kind = DomainEventKind::kDefined;
  std::string name;
  std::string uuid;
  int64_t domid = -1;
  DomainState state = DomainState::kStopped;
  absl::Time time = absl::UnixEpoch();
  std::string message;
};

}  // namespace xenctl::core
