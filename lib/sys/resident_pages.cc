#include "lib/sys/resident_pages.h"

#include <algorithm>

#include <malloc.h>
#include <sys/mman.h>
#include <time.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace xenctl::sys {

namespace {

struct Mapping {
  uintptr_t start = 0, end = 0;
  std::string perms, path;
  uint64_t rss_kib = 0, anon_kib = 0;
  std::string flags;  // VmFlags: " rd ex mr mw me sd"
};

// Mappings madvise cannot drop or must not: device memory (io, pf: a foreign
// domain's pages mapped through /dev/xen/privcmd do not fault back), locked
// (lo) and huge TLB pages (ht).
bool hasUndroppableFlag(const std::string& flags) {
  for (const char* f : {" io", " pf", " lo", " ht"})
    if (absl::StrContains(flags + " ", std::string(f) + " ")) return true;
  return false;
}

}  // namespace

Result<Released> releaseIdlePages() {
  std::ifstream f("/proc/self/smaps");
  if (!f) return errnoStatus(errno, "reading /proc/self/smaps to release idle pages");
  std::vector<Mapping> maps;
  std::string line;
  while (std::getline(f, line)) {
    uintptr_t a = 0, b = 0;
    char perms[8] = {};
    int path_at = 0;
    // "start-end perms offset dev inode [path]"; the fields' lines ("Rss:   4 kB") do not parse as one.
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %n", &a, &b, perms, &path_at) >= 3 &&
        path_at > 0) {
      maps.push_back({a, b, perms, line.substr(path_at), 0, 0, ""});
      continue;
    }
    if (maps.empty()) continue;
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "Rss: %llu kB", &kib) == 1) maps.back().rss_kib = kib;
    else if (std::sscanf(line.c_str(), "Anonymous: %llu kB", &kib) == 1) maps.back().anon_kib = kib;
    else if (line.rfind("VmFlags:", 0) == 0) maps.back().flags = line.substr(8);
  }
  Released r;
  for (const Mapping& m : maps) {
    // Private, not writable, backed by a file ("/...", not [vdso], not a device), no private copy of any page.
    const bool readonly_private = m.perms == "r-xp" || m.perms == "r--p";
    if (!readonly_private || !m.path.starts_with('/') || m.path.starts_with("/dev/") || m.anon_kib != 0 ||
        m.rss_kib == 0 || hasUndroppableFlag(m.flags))
      continue;
    if (::madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) != 0)
      return errnoStatus(errno, absl::StrFormat("releasing the idle pages of %s (madvise)", m.path));
    r.file_bytes += m.rss_kib * 1024;
    ++r.mappings;
  }
  ::malloc_trim(0);
  return r;
}

bool IdlePolicy::periodEnded(absl::Duration cpu_time) {
  const absl::Duration used = cpu_time - last_cpu_;
  last_cpu_ = cpu_time;
  last_used_ = used;
  const absl::Duration idle =
      recent_.empty() ? idle_cpu_ : std::max(idle_cpu_, kFloorFactor * *std::min_element(recent_.begin(), recent_.end()));
  recent_.push_back(used);
  if (recent_.size() > kFloorPeriods) recent_.pop_front();
  if (used >= idle || (!worked_ && used * kFloorFactor < released_after_)) worked_ = true;
  return used < idle && worked_;
}

void IdlePolicy::released(absl::Duration cpu_time) {
  last_cpu_ = cpu_time;
  released_after_ = last_used_;
  worked_ = false;
}

absl::Duration processCpuTime() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

}  // namespace xenctl::sys
