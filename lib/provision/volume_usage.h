// VolumeUsage: which of our domains use which managed volumes, below both
// DomainManager and StorageManager. DomainManager records a domain's use
// from the moment it starts handing the domain to the hypervisor until the
// domain is gone from it; StorageManager only asks (a volume in use is not
// deleted, rolled back or resized). Neither manager calls the other for it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/domain.h"

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

 private:
  struct Entry {
    int64_t domid = -1;
    std::vector<core::DiskSpec> disks;  // the vol: ones
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> by_domain_;
};

}  // namespace xenctl::provision
