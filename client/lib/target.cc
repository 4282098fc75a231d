#include "client/lib/target.h"

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace xenctl::client {
namespace {

Status badAddress(std::string_view address, std::string_view source, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid address '", av(address), "' (from ", av(source),
                                                 "): ", av(why), "; use unix:PATH or tcp:HOST:PORT"));
}

}  // namespace

Result<Target> parseTarget(std::string_view address, std::string_view source) {
  Target t;
  t.address = std::string(address);
  t.source = std::string(source);
  if (address.starts_with("unix:")) {
    std::string_view path = address.substr(5);
    if (path.empty()) return badAddress(address, source, "the socket path is empty");
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(std::filesystem::path(path), ec);
    if (ec) return badAddress(address, source, ec.message());
    t.kind = Target::Kind::kUnix;
    t.endpoint = abs.lexically_normal().string();
    t.grpc_target = "unix:" + t.endpoint;
    return t;
  }
  if (address.starts_with("tcp:")) {
    std::string_view hostport = address.substr(4);
    size_t colon = hostport.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return badAddress(address, source, "it needs HOST:PORT");
    std::string_view host = hostport.substr(0, colon);
    uint32_t port = 0;
    if (!absl::SimpleAtoi(av(hostport.substr(colon + 1)), &port) || port == 0 || port > 65535)
      return badAddress(address, source, "the port must be a number from 1 to 65535");
    if (host.find(':') != std::string_view::npos && !(host.starts_with("[") && host.ends_with("]")))
      return badAddress(address, source, "write an IPv6 host in brackets, as tcp:[::1]:7443");
    t.kind = Target::Kind::kTcp;
    t.endpoint = std::string(hostport);
    t.grpc_target = std::string(hostport);
    return t;
  }
  return badAddress(address, source, "unknown scheme");
}

Result<Target> resolveTarget(std::string_view flag_value, const char* env_value) {
  if (!flag_value.empty()) return parseTarget(flag_value, "--connect");
  if (env_value != nullptr && *env_value != '\0') return parseTarget(env_value, kConnectEnv);
  return parseTarget(kDefaultConnect, "default");
}

TlsFiles resolveTlsFiles(const TlsFiles& flags, const char* cert_env, const char* key_env, const char* ca_env) {
  auto pick = [](const std::string& flag, const char* env) {
    return !flag.empty() || env == nullptr ? flag : std::string(env);
  };
  return TlsFiles{pick(flags.cert, cert_env), pick(flags.key, key_env), pick(flags.ca, ca_env)};
}

}  // namespace xenctl::client
