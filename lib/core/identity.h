// Who calls xenctld, and what the daemon's authorization lets it do. The
// daemon fills these from the connection (SO_PEERCRED on the Unix socket, the
// client certificate on a TLS listener); lib/ only reads them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xenctl::core {

struct Identity {
  enum class Kind { kUnknown, kUnix, kCertificate };
  Kind kind = Kind::kUnknown;
  /// kUnix: the peer's credentials; supplementary groups as resolved by the daemon.
  int64_t uid = -1;
  int64_t gid = -1;
  std::vector<int64_t> groups;
  /// kCertificate: the verified client certificate's subject (RFC 4514 form,
  /// e.g. "CN=orchestrator,O=example") and subject alternative names.
  std::string subject;
  std::vector<std::string> sans;
};

/// Ordered: each role may do what the ones before it may.
enum class Role { kNone, kViewer, kOperator, kAdmin };

}  // namespace xenctl::core
