#include "client/lib/command.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/lib/output.h"
#include "client/lib/target.h"
#include "lib/core/domain.h"

namespace xenctl::client {
namespace {

std::string footer() {
  return absl::StrCat("The daemon's address: --connect, else $", kConnectEnv, ", else ", av(kDefaultConnect),
                      ".\nA tcp: address needs mutual TLS: --cert, --key and --ca (else $", kCertEnv, ", $", kKeyEnv,
                      ", $", kCaEnv, ").\n\n",
                      exitCodesHelp());
}

/// One status line on a terminal's stderr, redrawn in place.
class ProgressLine {
 public:
  ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressLine() { clear(); }
  bool enabled() const { return enabled_; }
  void show(const v1::Operation& op) {
    if (!enabled_) return;
    std::string line = operationLine(op);
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void clear() {
    if (!enabled_ || !drawn_) return;
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace

Session::Session(std::string program, const CommonOptions& options) : program_(std::move(program)), options_(options) {}

Result<Client*> Session::client() {
  if (client_) return client_.get();
  XENCTL_ASSIGN_OR_RETURN(Target target, resolveTarget(options_.connect, std::getenv(kConnectEnv)));
  const absl::Duration timeout = absl::Seconds(options_.call_timeout);
  TlsFiles tls = resolveTlsFiles(options_.tls, std::getenv(kCertEnv), std::getenv(kKeyEnv), std::getenv(kCaEnv));
  XENCTL_ASSIGN_OR_RETURN(client_, Client::connect(target, tls, timeout, timeout));
  return client_.get();
}

int Session::fail(const Status& status) {
  std::cout.flush();
  std::cerr << program_ << ": " << status.message() << std::endl;
  return exitCodeFor(status);
}

int Session::usage(std::string_view message) { return fail(absl::InvalidArgumentError(av(message))); }

void Session::print(std::string_view text) { std::cout << text << std::flush; }

void Session::printJson(const nlohmann::ordered_json& value) { std::cout << value.dump(2) << std::endl; }

std::string Session::requestId(const MutationOptions& m) {
  return m.request_id.empty() ? core::newUuid() : m.request_id;
}

Result<v1::Operation> Session::wait(const v1::Operation& op) {
  XENCTL_ASSIGN_OR_RETURN(Client * c, client());
  ProgressLine progress;
  // One WaitOperation answers at the end; a progress line on a terminal is
  // redrawn each second meanwhile.
  return c->waitOperation(op, [&](const v1::Operation& update) { progress.show(update); },
                          progress.enabled() ? absl::Seconds(1) : absl::Hours(1));
}

int Session::finishMutation(const Result<v1::Operation>& started, const MutationOptions& m, const std::string& domain,
                            Then then) {
  return finishMutation(started, m, [&](const v1::Operation& done) -> int {
    if (then == Then::kReportDeleted) {
      if (json())
        printJson(toJson(done));
      else
        print(absl::StrCat("deleted domain '", domain, "'\n"));
      return kExitOk;
    }
    return showDomain(domain);
  });
}

int Session::showDomain(const std::string& name) {
  Result<Client*> c = client();
  if (!c.ok()) return fail(c.status());
  Result<v1::Domain> d = (*c)->getDomain(name);
  if (!d.ok()) return fail(d.status());
  if (json())
    printJson(toJson(*d));
  else
    print(domainTable(one(*d)));
  return kExitOk;
}

int Session::finishMutation(const Result<v1::Operation>& started, const MutationOptions& m,
                            const std::function<int(const v1::Operation& done)>& show) {
  if (!started.ok()) return fail(started.status());
  if (m.no_wait) {
    if (json())
      printJson(toJson(*started));
    else
      print(started->id() + "\n");
    return kExitOk;
  }
  Result<v1::Operation> done = wait(*started);
  if (!done.ok()) return fail(done.status());
  if (Status s = operationStatus(*done); !s.ok()) return fail(s);
  return show(*done);
}

void addCommonOptions(CLI::App& app, CommonOptions& options) {
  app.add_option("--connect", options.connect, "xenctld's address: unix:PATH or tcp:HOST:PORT")->type_name("ADDR");
  app.add_option("--cert", options.tls.cert, "tcp: only: this client's certificate (PEM; else $XENCTL_CERT)")
      ->type_name("FILE");
  app.add_option("--key", options.tls.key, "tcp: only: the certificate's private key (PEM; else $XENCTL_KEY)")
      ->type_name("FILE");
  app.add_option("--ca", options.tls.ca, "tcp: only: the CA of xenctld's certificate (PEM; else $XENCTL_CA)")
      ->type_name("FILE");
  app.add_flag("--json", options.json, "Print JSON for scripts instead of tables");
  app.add_option("--call-timeout", options.call_timeout, "Deadline of each call to the daemon, in seconds")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void addMutationOptions(CLI::App& app, MutationOptions& options) {
  app.add_flag("--no-wait", options.no_wait, "Print the operation id and return without waiting for it");
  app.add_option("--request-id", options.request_id,
                 "Idempotency key: a retry with the same id gets the same operation (default: random)")
      ->type_name("ID");
}

CLI::App* addSubcommand(CLI::App& app, const char* name, const char* summary) {
  CLI::App* s = app.add_subcommand(name, summary);
  s->fallthrough();
  return s;
}

int runMain(int argc, char** argv, std::span<const CommandInfo> commands) {
  std::string argv0 = argc > 0 ? argv[0] : "vmm";
  if (size_t slash = argv0.rfind('/'); slash != std::string::npos) argv0 = argv0.substr(slash + 1);

  CommonOptions common;
  std::vector<std::pair<CLI::App*, std::unique_ptr<Command>>> built;
  std::unique_ptr<CLI::App> app;

  if (argv0.starts_with("vm-")) {
    const std::string name = argv0.substr(3);
    const CommandInfo* info = nullptr;
    for (const CommandInfo& c : commands)
      if (c.vm_alias && c.name == name) info = &c;
    if (info == nullptr) {
      std::cerr << argv0 << ": no such command; run 'vmm --help' for the list\n";
      return kExitUsage;
    }
    app = std::make_unique<CLI::App>(std::string(info->summary), argv0);
    addCommonOptions(*app, common);
    auto cmd = info->make();
    cmd->setup(*app);
    built.emplace_back(app.get(), std::move(cmd));
  } else {
    argv0 = "vmm";
    app = std::make_unique<CLI::App>("vmm: manage Xen domains through xenctld", argv0);
    app->require_subcommand(1);
    addCommonOptions(*app, common);
    for (const CommandInfo& c : commands) {
      CLI::App* sub = app->add_subcommand(std::string(c.name), std::string(c.summary));
      addCommonOptions(*sub, common);
      sub->footer(footer());
      auto cmd = c.make();
      cmd->setup(*sub);
      built.emplace_back(sub, std::move(cmd));
    }
  }
  app->footer(footer());

  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << argv0 << ": " << e.what() << "\nRun '" << argv0 << " --help' for usage.\n";
    return kExitUsage;
  }

  for (auto& [parsed_app, cmd] : built) {
    if (parsed_app == app.get() || parsed_app->parsed()) {
      Session session(argv0, common);
      return cmd->run(session);
    }
  }
  std::cerr << argv0 << ": no command given; run '" << argv0 << " --help'\n";
  return kExitUsage;
}

}  // namespace xenctl::client
