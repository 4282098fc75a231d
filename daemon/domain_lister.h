// DomainLister: ListDomains' answer, written as protobuf's wire format from
// each domain's encoding kept between calls, rather than built as 1000
// messages and freed again at each call (issue 17: that was most of a
// listing's time).
//
// What is kept is a domain's definition as encoded (the Domain fields the
// definition gives: spec, created_at, owner_uid, owner, grants), under the
// version DomainManager gives the definition (DomainView::version): a
// change of the definition gives a new version, and the encoding of the old
// one is never used again. The fields the hypervisor's report gives (state,
// domid, vcpus_online, memory_mib, cpu_time_seconds, foreign, state_reason)
// are written anew at each call. The answer is byte for byte the
// serialization of the ListDomainsResponse that toProto() (daemon/convert.h)
// builds for the same views (tests/unit/daemon/domain_lister_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "lib/core/status.h"
#include "lib/provision/access_policy.h"
#include "lib/provision/caller.h"
#include "lib/provision/domain_manager.h"
#include "xenctl/v1/domain.pb.h"

namespace xenctl::daemon {

class DomainLister {
 public:
  /// Answers of at most about `max_answer_bytes` (a page; next_page_token
  /// continues it).
  DomainLister(provision::DomainManager& domains, provision::AccessPolicy& access, size_t max_answer_bytes);
  DomainLister(const DomainLister&) = delete;
  DomainLister& operator=(const DomainLister&) = delete;

  /// The encoded ListDomainsResponse for `req`: ours by name, then (with
  /// include_foreign) the foreign ones by name; of those, the ones after
  /// req.page_token that `caller` may see (AccessPolicy::maySeeDomain); as
  /// many as fit in max_answer_bytes (at least one), with the
  /// next_page_token "0:NAME" (ours) or "1:NAME" (foreign) of the last one
  /// when more follow. A domain whose Domain is over a quarter of that is
  /// shown without its spec's disks, vifs, bootloader_args and cmdline, and
  /// says so in its state_reason (a spec stored before the spec limits).
  /// Errors are DomainManager::list's.
  Result<std::string> list(const provision::Caller& caller, const v1::ListDomainsRequest& req);

  /// How many encodings are kept, and about the memory they take: their
  /// bytes and the table's (figures, tests).
  struct Usage {
    size_t domains = 0;
    size_t bytes = 0;
  };
  Usage usage() const;

  struct Encoded;  // daemon/domain_lister.cc

 private:
  provision::DomainManager& domains_;
  provision::AccessPolicy& access_;
  const size_t max_answer_bytes_;
  mutable std::shared_mutex mu_;  // guards encodings_
  /// Ours by name: their definition's encoding at the version it records.
  /// An encoding is immutable once made, and shared with the calls using it.
  absl::flat_hash_map<std::string, std::shared_ptr<const Encoded>> encodings_;
};

}  // namespace xenctl::daemon
