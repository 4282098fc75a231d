// Giving back, while xenctld is idle, the resident pages it does not need:
// file pages only start-up or the last burst of work touched, and malloc's
// free memory (issue 17 part 5; README, Benchmarks).
#pragma once

#include <cstdint>
#include <deque>

#include "absl/time/time.h"
#include "lib/core/status.h"

namespace xenctl::sys {

struct Released {
  uint64_t file_bytes = 0;  ///< resident file pages whose mappings were dropped
  int mappings = 0;         ///< mappings dropped
};

/// Drops this process's page-table entries (madvise MADV_DONTNEED) for every
/// private file mapping that cannot be written (r-x text, r-- headers, symbol
/// tables, rodata) and holds no private copy of a page (Anonymous: 0 in
/// /proc/self/smaps: no relocated RELRO page, no text relocation), that is
/// not a device's (/dev/..., VM_IO or VM_PFNMAP: Xen's privcmd mappings of
/// a domain's memory) and not locked, then
/// gives malloc's free memory back (malloc_trim). Nothing is lost: such a
/// page equals its file's, stays in the page cache, and one used again comes
/// back with a minor fault (the kernel maps 64 KiB of cached file around it).
/// What falls is RSS and PSS, and the pages become reclaimable without
/// unmapping them first. Writable mappings are left alone (a thread could be
/// writing). Errors name /proc/self/smaps or the mapping.
Result<Released> releaseIdlePages();

/// When to call releaseIdlePages: at the end of an idle period, once after
/// each stretch of work, start-up included. Once per stretch, not at every
/// idle period: even idle, gRPC's timers and pollers fault back a few MiB of
/// text, and dropping them again each period would be churn.
///
/// A period is idle when it used less CPU time than the larger of
/// `idle_cpu` and kFloorFactor times the least any of the kFloorPeriods
/// periods before it used (the floor: what idle costs on this machine now),
/// and work otherwise. The floor is what makes it hold on a slow machine:
/// idle xenctld uses about 0.04% of a CPU natively, under the lab's TCG ten
/// times and more (and more again when the host is loaded: 40 ms a period
/// at load 2, 130 ms at load 7), past any fixed bound that still tells a
/// call from idleness natively; it is taken over recent periods so that it
/// follows such a change within kFloorPeriods. The floor may be a busy
/// period's (early on, or after long work); a release made then is undone
/// (as if work followed it) by a later period that uses less than its
/// period did over kFloorFactor, so the release is made again once idle.
/// Pure: the caller feeds the process's CPU time at each period's end.
class IdlePolicy {
 public:
  static constexpr int kFloorFactor = 3;
  static constexpr size_t kFloorPeriods = 12;

  explicit IdlePolicy(absl::Duration idle_cpu) : idle_cpu_(idle_cpu) {}
  /// At a period's end; true when to release.
  bool periodEnded(absl::Duration cpu_time);
  /// After a release, with the CPU time once it is done (a release's own CPU
  /// time is not work).
  void released(absl::Duration cpu_time);

 private:
  absl::Duration idle_cpu_;
  absl::Duration last_cpu_ = absl::ZeroDuration();
  std::deque<absl::Duration> recent_;  // what the last kFloorPeriods ended periods used, oldest first
  absl::Duration last_used_ = absl::ZeroDuration();  // what the last ended period used
  absl::Duration released_after_ = absl::ZeroDuration();  // what the period before the last release used
  bool worked_ = true;  // start-up
};

/// The CPU time this process has used (all threads).
absl::Duration processCpuTime();

}  // namespace xenctl::sys
