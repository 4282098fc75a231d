// The daemon's side of mutual TLS on tcp: listeners ([daemon.tls]). The files
// are read and checked here, at start and on SIGHUP, so that a wrong file is
// reported by its setting and name rather than as a failed handshake later.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "lib/core/status.h"

namespace xenctl::daemon {

/// [daemon.tls]'s files, read and checked.
struct TlsMaterial {
  std::string cert_chain;  ///< PEM, leaf first
  std::string key;         ///< PEM, unencrypted
  std::string client_ca;   ///< PEM bundle, one certificate or more
  /// For the log: the leaf's subject and when it expires.
  std::string summary;
  /// For the log: what works but should be changed (a key other users can read).
  std::vector<std::string> warnings;
};

/// Reads the three files and checks that each holds PEM of its kind and that
/// the key belongs to the certificate. INVALID_ARGUMENT names the setting and
/// the file ("[daemon.tls] key /etc/xenctl/tls/key.pem does not match cert ...").
Result<TlsMaterial> loadTlsMaterial(const TlsConfig& config);

/// Server credentials that present `material`'s certificate and require a
/// client certificate that verifies against its client_ca (chain and validity
/// period); a client without one never reaches a service.
std::shared_ptr<grpc::ServerCredentials> mutualTlsCredentials(const TlsMaterial& material);

}  // namespace xenctl::daemon
