// The frame every command runs in: common flags, the connection, printing,
// errors and exit codes, and the usual end of a mutating command (wait for
// its operation, then show the result). Commands stay a few lines each.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "client/lib/client.h"
#include "client/lib/exit_codes.h"
#include "client/lib/target.h"
#include "lib/core/status.h"

namespace xenctl::client {

/// Flags every command takes.
struct CommonOptions {
  std::string connect;       ///< --connect
  TlsFiles tls;              ///< --cert, --key, --ca (for tcp: addresses)
  bool json = false;         ///< --json
  double call_timeout = 30;  ///< --call-timeout, seconds
};

/// Flags every mutating command takes.
struct MutationOptions {
  bool no_wait = false;    ///< --no-wait: print the operation id and return
  std::string request_id;  ///< --request-id: fixed idempotency key (default: a fresh random one)
};

class Session {
 public:
  Session(std::string program, const CommonOptions& options);

  const CommonOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  const std::string& program() const { return program_; }

  /// Connects on first use (exit 4 on failure, with the address tried).
  Result<Client*> client();

  /// Prints "<program>: <message>" on stderr; returns the status's exit code.
  int fail(const Status& status);
  /// Prints a usage error; returns 2.
  int usage(std::string_view message);
  void print(std::string_view text);
  /// Prints JSON indented by two (toJson in client/lib/output.h makes it).
  void printJson(const nlohmann::ordered_json& value);

  /// The request id for a mutation: --request-id, else a fresh random one.
  static std::string requestId(const MutationOptions& m);
  /// A mutation's request (v1::StartDomainRequest ...) on the domain `name`,
  /// with its request_id and name set.
  template <class Req>
  static Req domainRequest(const MutationOptions& m, const std::string& name) {
    Req req;
    req.set_request_id(requestId(m));
    req.set_name(name);
    return req;
  }

  /// Watches `op` to its end, drawing progress on stderr when it is a terminal.
  Result<v1::Operation> wait(const v1::Operation& op);

  /// What a mutating command shows once its operation succeeded.
  enum class Then {
    kShowDomain,     ///< the domain named `domain` (GetDomain), as vm-list / vm-info --json do
    kReportDeleted,  ///< "deleted domain 'NAME'"; with --json the finished operation
  };
  /// Prints the domain `name` (GetDomain) as vm-info does, or as JSON.
  int showDomain(const std::string& name);
  /// The end of every mutating command: report an RPC error; with --no-wait
  /// print the operation id (the operation with --json); else wait, report a
  /// failed operation, and show the result as `then` says.
  int finishMutation(const Result<v1::Operation>& started, const MutationOptions& m, const std::string& domain,
                     Then then);
  /// The same, for objects other than domains: once the operation has
  /// succeeded, `show` prints the result and returns the exit code.
  int finishMutation(const Result<v1::Operation>& started, const MutationOptions& m,
                     const std::function<int(const v1::Operation& done)>& show);

 private:
  std::string program_;
  const CommonOptions& options_;
  std::unique_ptr<Client> client_;
};

/// One subcommand: vmm NAME ..., and vm-NAME when it has a vm- alias.
class Command {
 public:
  virtual ~Command() = default;
  /// Declares the command's flags and positionals, bound to its members.
  virtual void setup(CLI::App& app) = 0;
  virtual int run(Session& session) = 0;
};

struct CommandInfo {
  std::string_view name;     ///< "create"
  std::string_view summary;  ///< one line for --help
  bool vm_alias;             ///< also installed as vm-NAME
  std::unique_ptr<Command> (*make)();
};

void addCommonOptions(CLI::App& app, CommonOptions& options);
void addMutationOptions(CLI::App& app, MutationOptions& options);
/// A subcommand of `app` ("vm-volume clone") after which the common options
/// (--json, --connect ...) may still come.
CLI::App* addSubcommand(CLI::App& app, const char* name, const char* summary);

/// main() of vmm and of every vm-* link to it: dispatches on argv[0]
/// ("vm-create ARGS" is "vmm create ARGS"), parses, runs, returns the exit code.
int runMain(int argc, char** argv, std::span<const CommandInfo> commands);

}  // namespace xenctl::client
