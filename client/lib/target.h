// Where xenctld listens, as given by --connect, XENCTL_CONNECT or the default.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace xenctl::client {

inline constexpr std::string_view kDefaultConnect = "unix:/run/xenctld/xenctld.sock";
inline constexpr const char* kConnectEnv = "XENCTL_CONNECT";
inline constexpr const char* kCertEnv = "XENCTL_CERT";
inline constexpr const char* kKeyEnv = "XENCTL_KEY";
inline constexpr const char* kCaEnv = "XENCTL_CA";

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

/// The client's side of mutual TLS on a tcp: target: PEM file names, each
/// from its flag (--cert, --key, --ca) else its variable (XENCTL_CERT,
/// XENCTL_KEY, XENCTL_CA). Unix targets ignore them.
struct TlsFiles {
  std::string cert;  ///< the client's certificate chain, leaf first
  std::string key;   ///< its unencrypted private key
  std::string ca;    ///< the CAs that vouch for the daemon's certificate
};

/// Each flag when given, else its variable when set and non-empty.
TlsFiles resolveTlsFiles(const TlsFiles& flags, const char* cert_env, const char* key_env, const char* ca_env);

}  // namespace xenctl::client
