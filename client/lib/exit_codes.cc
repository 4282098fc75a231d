#include "client/lib/exit_codes.h"

#include "absl/strings/cord.h"

namespace xenctl::client {
namespace {
constexpr char kConnectPayload[] = "type.xenctl.dev/client.ConnectError";
}

std::string exitCodesHelp() {
  return "Exit status:\n"
         "  0  success\n"
         "  1  the server refused the request or the operation failed\n"
         "  2  usage: bad flags or values (also the server's INVALID_ARGUMENT)\n"
         "  3  not found: no such domain or operation\n"
         "  4  cannot connect: no xenctld answers at the address\n";
}

Status markConnectError(Status status) {
  status.SetPayload(kConnectPayload, absl::Cord("1"));
  return status;
}

bool isConnectError(const Status& status) { return status.GetPayload(kConnectPayload).has_value(); }

ExitCode exitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  if (isConnectError(status)) return kExitCannotConnect;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return kExitUsage;
    case absl::StatusCode::kNotFound: return kExitNotFound;
    default: return kExitFailed;
  }
}

}  // namespace xenctl::client
