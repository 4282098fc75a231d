// VolumeUsage: which of our domains use which managed volumes, below both
// DomainManager and StorageManager. DomainManager records a domain's use
// from the moment it starts handing the domain to the hypervisor until the
// domain is gone from it; StorageManager only asks (a volume in use is not
// deleted, rolled back or resized). Neither manager calls the other for it.
//
// It also knows which volumes are being deleted (holdForDelete): a domain
// is neither started on nor defined with such a volume, and a volume in
// use is not held. Both sides mark first and check second under this
// registry's lock, so of a deletion and a start (or a definition) racing on
// one volume exactly one goes ahead.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/domain.h"
#include "lib/core/status.h"

namespace xenctl::provision {

class VolumeUsage {
 public:
  /// One domain's use of one volume: the disk that names it ("vol:POOL/NAME").
  struct Use {
    std::string domain;
    core::DiskSpec disk;
  };

  /// `spec`'s domain uses the volumes its disks name ("vol:" targets; host
  /// paths are not tracked), replacing what it was recorded using before.
  /// `domid` is the hypervisor's id of the run, -1 while it is being started.
  void record(const core::DomainSpec& spec, int64_t domid);
  /// The domain's run is now `domid` (a start returned, a restart rebuilt it).
  /// No-op when it records no use.
  void setDomid(const std::string& domain, int64_t domid);
  /// The domain uses nothing any more. With `domid` >= 0, only when the use
  /// recorded is of that run (not of another, nor of one being started): a
  /// late report of an earlier run's end must not free a later run's volumes.
  void release(const std::string& domain, int64_t domid = -1);

  /// "vol:POOL/NAME" -> the domain using it (the first by name when several
  /// read it).
  std::map<std::string, std::string> users() const;
  /// The domain using `target` ("vol:POOL/NAME"), if any.
  std::optional<std::string> userOf(const std::string& target) const;
  /// The uses of `target` by domains other than `except`.
  std::vector<Use> usesOf(const std::string& target, const std::string& except) const;

  /// Marks a volume ("vol:POOL/NAME") as being deleted while it lives.
  class DeleteHold {
   public:
    DeleteHold(DeleteHold&& o) noexcept : usage_(std::exchange(o.usage_, nullptr)), target_(std::move(o.target_)) {}
    DeleteHold& operator=(DeleteHold&&) = delete;
    DeleteHold(const DeleteHold&) = delete;
    ~DeleteHold();

   private:
    friend class VolumeUsage;
    DeleteHold(VolumeUsage* usage, std::string target) : usage_(usage), target_(std::move(target)) {}
    VolumeUsage* usage_;
    std::string target_;
  };
  /// Marks `target` as being deleted, atomically with the check that no
  /// domain uses it: FAILED_PRECONDITION ("STEP: running domain 'X' uses it;
  /// shut the domain down first") otherwise. Holds nest (a domain's deletion
  /// holds its volumes, and StorageManager::removeNow holds each again).
  Result<DeleteHold> holdForDelete(const std::string& target, std::string_view step);
  /// Whether a deletion holds `target`.
  bool deleting(const std::string& target) const;

 private:
  struct Entry {
    int64_t domid = -1;
    std::vector<core::DiskSpec> disks;  // the vol: ones
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> by_domain_;
  std::map<std::string, int> deleting_;  // target -> holds
};

}  // namespace xenctl::provision
