// Crash injection for the recovery tests: xenctld started with
// XENCTLD_CRASH_AT=POINT aborts (no cleanup, no destructors: as kill -9)
// when it reaches POINT, so a test can restart it and check that recovery
// (recovery.h) left nothing half-made. main() reads the variable once,
// before any thread starts; `XENCTLD_CRASH_AT=list` prints the points.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace xenctl::provision {

/// Every point xenctld knows, in the order an operation passes them:
/// "KIND/STEP" after the journal entry that begins STEP of an operation of
/// KIND, before its work; "KIND/STEP:done" after its work, before the
/// journal says so; and a few inside a step ("create-domain/define:stored":
/// the definition stored, the hypervisor not yet asked).
const std::vector<std::string>& crashPoints();

/// Arms `point` for this process. INVALID_ARGUMENT for a point not in
/// crashPoints(). Not thread-safe: call before any thread starts.
Status armCrashPoint(const std::string& point);

/// Aborts the process when `point` is the armed one; otherwise nothing.
void crashPoint(std::string_view point);

}  // namespace xenctl::provision
