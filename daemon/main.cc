// xenctld: configuration, wiring, signals, sd_notify. Nothing else.
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/server.h"
#include "lib/provision/crash_points.h"
#include "lib/sys/resident_pages.h"

#ifndef XENCTL_VERSION
#define XENCTL_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using namespace xenctl;
  CLI::App app{"xenctld: the xenctl provisioning daemon for a Xen Dom0"};
  std::string config_file;
  std::vector<std::string> listen;
  std::string state_dir, hypervisor, log_level;
  uint32_t max_operations = 0;
  app.add_option("--config", config_file, "TOML configuration file (flags override it)");
  app.add_option("--listen", listen, "unix:PATH or tcp:HOST:PORT (repeatable)");
  app.add_option("--state-dir", state_dir, "directory for the state database");
  app.add_option("--hypervisor", hypervisor, "libxl (real Xen) or test (in memory)");
  app.add_option("--max-operations", max_operations, "operations running at once")->check(CLI::Range(1, 1024));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.set_version_flag("--version", XENCTL_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version are not errors
  }

  // Under systemd stderr goes to the journal, which stamps time itself.
  auto logger = spdlog::stderr_logger_mt("xenctld");
  logger->set_pattern(std::getenv("JOURNAL_STREAM") ? "%l: %v" : "%Y-%m-%dT%H:%M:%S.%e %l: %v");
  spdlog::set_default_logger(logger);

  daemon::Config config;
  if (!config_file.empty()) {
    auto loaded = daemon::loadConfig(config_file);
    if (!loaded.ok()) {
      spdlog::critical("{}", std::string(loaded.status().message()));
      return 2;
    }
    config = *std::move(loaded);
  }
  if (!listen.empty()) config.listen = listen;
  if (!state_dir.empty()) config.state_dir = state_dir;
  if (!hypervisor.empty()) config.hypervisor = hypervisor;
  if (max_operations) config.max_operations = max_operations;
  if (!log_level.empty()) config.log_level = log_level;
  if (auto st = daemon::validateConfig(config); !st.ok()) {
    spdlog::critical("{}", std::string(st.message()));
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));

  // Crash injection for the recovery tests (lib/provision/crash_points.h),
  // read here only, before any thread starts.
  if (const char* crash_at = std::getenv("XENCTLD_CRASH_AT"); crash_at && *crash_at) {
    if (std::string_view(crash_at) == "list") {
      for (const auto& p : provision::crashPoints()) std::cout << p << "\n";
      return 0;
    }
    if (auto st = provision::armCrashPoint(crash_at); !st.ok()) {
      spdlog::critical("{}", std::string(st.message()));
      return 2;
    }
    spdlog::warn("XENCTLD_CRASH_AT={}: this xenctld aborts when it gets there (a test of recovery)", crash_at);
  }

  // The unit binds xenctld's symbols at start (LD_BIND_NOW, see
  // xenctld.service); its children (lvm, hotplug scripts, QEMU) bind as usual.
  ::unsetenv("LD_BIND_NOW");

  // Two malloc arenas, not glibc's 8 per core: each thread that allocates
  // otherwise gets one of its own, and gRPC's and the operations' threads
  // kept about 1.5 MiB each resident after work (issue 17 part 5).
  mallopt(M_ARENA_MAX, 2);

  // Signals are taken by sigwait below; every thread started from here on inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);  // reloads the TLS certificates
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = daemon::Server::start(config, XENCTL_VERSION);
  if (!server.ok()) {
    spdlog::critical("{}", std::string(server.status().message()));
    return 1;
  }
  std::string where;
  for (const auto& l : (*server)->addresses()) where += (where.empty() ? "" : ", ") + l;
  spdlog::info("xenctld {} serving on {} (hypervisor {}, state {})", XENCTL_VERSION, where, config.hypervisor,
               config.state_dir);
  // STATUS= is what `systemctl status` and `systemctl show -p StatusText` print.
  const std::string serving = "STATUS=serving on " + where + " (hypervisor " + config.hypervisor + ")";
  sys::notifySystemd("READY=1\n" + serving);

  // Wait for a signal; with a systemd watchdog, prove liveness meanwhile.
  // SIGHUP rereads [daemon.tls]'s files; SIGTERM and SIGINT stop.
  const absl::Duration watchdog = sys::systemdWatchdogInterval();
  const absl::Duration period = watchdog == absl::ZeroDuration() ? absl::Seconds(5) : std::min(watchdog, absl::Seconds(5));
  // Idle, xenctld keeps mapped only what it uses (issue 17 part 5): what
  // start-up and each stretch of work touched is dropped at the end of the
  // first period after it that used less than 0.1% of a CPU (idle, gRPC's
  // timers and pollers use about 0.04%).
  sys::IdlePolicy idle(period / 1000);
  int sig = 0;
  for (;;) {
    timespec ts = absl::ToTimespec(period);
    sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig <= 0) {
      if (watchdog != absl::ZeroDuration()) sys::notifySystemd("WATCHDOG=1");
      if (idle.periodEnded(sys::processCpuTime())) {
        if (auto r = sys::releaseIdlePages(); !r.ok())
          spdlog::warn("{}", std::string(r.status().message()));
        else
          spdlog::debug("idle: {} KiB of file pages released ({} mappings)", r->file_bytes >> 10, r->mappings);
        idle.released(sys::processCpuTime());
      }
      continue;
    }
    if (sig != SIGHUP) break;
    sys::notifySystemd("RELOADING=1\nSTATUS=reloading the TLS certificates");
    if (auto st = (*server)->reloadTls(absl::Seconds(30)); st.ok())
      spdlog::info("SIGHUP: TLS certificates reloaded");
    else
      spdlog::warn("SIGHUP: TLS certificates not reloaded (those in use keep serving): {}", std::string(st.message()));
    sys::notifySystemd("READY=1\n" + serving);
  }
  spdlog::info("signal {}: stopping", sig);
  sys::notifySystemd("STOPPING=1\nSTATUS=stopping (signal " + std::to_string(sig) + ")");
  (*server)->stop(absl::Seconds(5));
  spdlog::info("stopped");
  return 0;
}
