#include "lib/provision/crash_points.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xenctl::provision {
namespace {

// Set once by armCrashPoint before threads start; read only afterwards.
std::string& armed() {
  static std::string point;
  return point;
}

}  // namespace

const std::vector<std::string>& crashPoints() {
  // Each journaled step (see runSaga and the journal() calls), begun and
  // done, and the points inside a step ("STEP:WHAT") between the two.
  static const std::vector<std::string> points = [] {
    const std::vector<std::pair<std::string, std::vector<std::string>>> steps = {
        {"create-domain", {"resolve", "clone", "grow", "customize", "define", "define:stored"}},
        {"fork-domain", {"clone", "customize", "define", "define:stored"}},
        {"import-image", {"stage", "base-volume", "base-volume:created", "catalog"}},
        {"delete-domain", {"delete", "delete:undefined"}},
        {"delete-image", {"delete", "delete:volume"}},
        {"apply-container", {"write"}},
    };
    std::vector<std::string> out;
    for (const auto& [kind, names] : steps)
      for (size_t i = 0; i < names.size(); ++i) {
        out.push_back(absl::StrCat(kind, "/", names[i]));
        if (names[i].find(':') != std::string::npos) continue;
        if (i + 1 < names.size() && names[i + 1].starts_with(names[i] + ":")) continue;  // done after it
        out.push_back(absl::StrCat(kind, "/", names[i], ":done"));
      }
    // A point inside a step is followed by the step's end.
    std::vector<std::string> ordered;
    for (const auto& p : out) {
      ordered.push_back(p);
      if (const size_t colon = p.find(':'); colon != std::string::npos && !p.ends_with(":done"))
        ordered.push_back(p.substr(0, colon) + ":done");
    }
    return ordered;
  }();
  return points;
}

Status armCrashPoint(const std::string& point) {
  const auto& known = crashPoints();
  if (std::find(known.begin(), known.end(), point) == known.end())
    return absl::InvalidArgumentError(absl::StrCat("XENCTLD_CRASH_AT: unknown crash point '", point,
                                                   "'; XENCTLD_CRASH_AT=list prints the ", known.size(),
                                                   " known ones"));
  armed() = point;
  return absl::OkStatus();
}

void crashPoint(std::string_view point) {
  if (armed().empty() || armed() != point) return;
  const std::string line = absl::StrCat("xenctld: XENCTLD_CRASH_AT=", av(point), ": aborting here\n");
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  std::abort();
}

}  // namespace xenctl::provision
