// Where xenctld listens, as given by --connect, XENCTL_CONNECT or the default.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace xenctl::client {

inline constexpr std::string_view kDefaultConnect = "unix:/run/xenctld/xenctld.sock";
inline constexpr const char* kConnectEnv = "XENCTL_CONNECT";

struct Target {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  /// The address as the user writes it: "unix:/run/xenctld/xenctld.sock", "tcp:host:7443".
  std::string address;
  /// Where it came from: "--connect", "XENCTL_CONNECT" or "default".
  std::string source;
  /// The socket path (unix) or "host:port" (tcp).
  std::string endpoint;
  /// The gRPC channel target: "unix:/abs/path" or "host:port".
  std::string grpc_target;
};

/// Parses "unix:PATH" (a relative PATH is made absolute) or "tcp:HOST:PORT"
/// ("tcp:[::1]:7443" for IPv6). INVALID_ARGUMENT names the address and the forms.
Result<Target> parseTarget(std::string_view address, std::string_view source);

/// The flag when given, else $XENCTL_CONNECT when set and non-empty, else
/// the default socket.
Result<Target> resolveTarget(std::string_view flag_value, const char* env_value);

}  // namespace xenctl::client
