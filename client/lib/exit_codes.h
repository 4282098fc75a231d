// The exit codes of vmm and vm-*, documented in --help and vmm(1).
#pragma once

#include <string>

#include "lib/core/status.h"

namespace xenctl::client {

enum ExitCode : int {
  kExitOk = 0,
  /// The server refused the request or the operation failed.
  kExitFailed = 1,
  /// Bad flags or values, here or on the server (INVALID_ARGUMENT).
  kExitUsage = 2,
  /// No such domain or operation (NOT_FOUND).
  kExitNotFound = 3,
  /// No daemon answers at the address.
  kExitCannotConnect = 4,
};

/// The text for --help footers and the man page.
std::string exitCodesHelp();

/// Marks `status` as "could not reach the daemon" (exit 4), which a plain
/// UNAVAILABLE from the server (a transient hypervisor error) is not.
Status markConnectError(Status status);
bool isConnectError(const Status& status);

/// 4 for connect errors, 2 for INVALID_ARGUMENT, 3 for NOT_FOUND, 1 otherwise.
/// The same mapping applies whether the RPC or the operation it started failed.
ExitCode exitCodeFor(const Status& status);

}  // namespace xenctl::client
