#include "lib/xen/libxl_hypervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/xen/libxl_config.h"
#include "lib/xen/libxl_c.h"

namespace xenctl::xen {

using core::DomainState;
using core::LifecycleAction;
using Kind = core::HypervisorEvent::Kind;

namespace {

constexpr uint32_t kNoDomid = INVALID_DOMID;

std::string who(const std::string& name) { return absl::StrCat("domain '", name, "'"); }

std::string nameOf(libxl_ctx* ctx, uint32_t domid) {
  char* name = libxl_domid_to_name(ctx, domid);  // from xenstore; gone once the domain is
  std::string out = name ? name : "";
  std::free(name);
  return out;
}

std::string reasonText(int reason) {
  switch (reason) {
    case LIBXL_SHUTDOWN_REASON_POWEROFF: return "the guest powered off";
    case LIBXL_SHUTDOWN_REASON_REBOOT: return "the guest rebooted";
    case LIBXL_SHUTDOWN_REASON_SUSPEND: return "the guest suspended";
    case LIBXL_SHUTDOWN_REASON_CRASH: return "the guest crashed";
    case LIBXL_SHUTDOWN_REASON_WATCHDOG: return "the guest's watchdog fired";
    case LIBXL_SHUTDOWN_REASON_SOFT_RESET: return "the guest asked for a soft reset";
    default: return absl::StrCat("the guest shut down (reason ", reason, ")");
  }
}

bool runningOrBlocked(DomainState s) { return s == DomainState::kRunning || s == DomainState::kBlocked; }

// The spec key whose action applies to a shutdown for `reason`.
const char* actionKeyFor(int reason) {
  switch (reason) {
    case LIBXL_SHUTDOWN_REASON_REBOOT:
    case LIBXL_SHUTDOWN_REASON_SOFT_RESET: return "on_reboot";
    case LIBXL_SHUTDOWN_REASON_CRASH: return "on_crash";
    case LIBXL_SHUTDOWN_REASON_WATCHDOG: return "on_watchdog";
    default: return "on_poweroff";
  }
}

// libxl's fork (fork_replacement): the child starts with no signal blocked.
// A forked child keeps the mask through exec, xenctld blocks SIGTERM, SIGINT
// and SIGHUP in every thread (sigwait), and libxl stops a device model with
// SIGHUP: a QEMU that inherited the mask outlived its destroyed domain
// (lab scenario xlboot, HVM and PV vfb).
pid_t forkWithSignalsUnblocked(void*) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
  }
  return pid;
}

}  // namespace

LibxlHypervisor::LibxlHypervisor(Options options)
    : options_(std::move(options)), logger_(options_.log, options_.min_log_level) {}

Result<std::unique_ptr<LibxlHypervisor>> LibxlHypervisor::create(Options options) {
  std::unique_ptr<LibxlHypervisor> hv(new LibxlHypervisor(std::move(options)));
  XENCTL_RETURN_IF_ERROR(hv->start());
  return hv;
}

Result<std::unique_ptr<LibxlHypervisor>> LibxlHypervisor::create() { return create(Options{}); }

Status LibxlHypervisor::start() {
  LibxlLogger::Capture capture;
  libxl_ctx* ctx = nullptr;
  if (int rc = libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, logger_.get()); rc != 0) {
    std::string why = capture.text();
    if (why.empty()) why = absl::StrCat("libxl_ctx_alloc failed (", rc, ")");
    if (xs_handle* xs = xs_open(0)) {
      xs_close(xs);
    } else {
      absl::StrAppend(&why, "; xenstore: ", std::strerror(errno));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot open libxl: ", why, "; is this a Xen Dom0 with xencommons running?"));
  }
  ctx_ = ctx;

  // See the class comment. Both structs must outlive the context.
  static const libxl_childproc_hooks kChildHooks = {libxl_sigchld_owner_libxl_always_selective_reap,
                                                     &forkWithSignalsUnblocked,
                                                     nullptr};
  libxl_childproc_setmode(ctx_, &kChildHooks, nullptr);
  static const libxl_event_hooks kEventHooks = {
      (1UL << LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN) | (1UL << LIBXL_EVENT_TYPE_DOMAIN_DEATH),
      &LibxlHypervisor::onLibxlEvent,
      // libxl may not be called from here. Events may stop; say so where an administrator looks.
      [](void* self, libxl_event_type, const char* msg, int errnoval) {
        auto* hv = static_cast<LibxlHypervisor*>(self);
        if (hv->options_.log)
          hv->options_.log(LibxlLogLevel::kError,
                           absl::StrCat("libxl event machinery failed (", msg ? msg : "", errnoval > 0 ? ": " : "",
                                        errnoval > 0 ? std::strerror(errnoval) : "",
                                        "); domain events may be missing until xenctld restarts"));
      },
  };
  libxl_event_register_callbacks(ctx_, &kEventHooks, this);

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return errnoStatus(errno, "eventfd");
  thread_ = std::thread([this] { eventLoop(); });
  action_thread_ = std::thread([this] { actionLoop(); });

  // Watch what already runs, so its shutdowns and deaths are reported.
  return present().status();
}

LibxlHypervisor::~LibxlHypervisor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (action_thread_.joinable()) {
    {
      std::lock_guard lock(actions_mu_);
      actions_stop_ = true;
    }
    actions_cv_.notify_all();
    action_thread_.join();  // after an action under way has finished
  }
  if (ctx_) {
    for (auto& [domid, w] : watches_) libxl_evdisable_domain_death(ctx_, w.evgen);
    libxl_ctx_free(ctx_);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

// ---- events --------------------------------------------------------------

void LibxlHypervisor::onLibxlEvent(void* self, libxl_event* e) {
  // Any thread, possibly with libxl locks held: queue and wake, nothing more.
  auto* hv = static_cast<LibxlHypervisor*>(self);
  Pending p{e->type, e->domid,
            e->type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN ? static_cast<int>(e->u.domain_shutdown.shutdown_reason) : 0};
  libxl_event_free(hv->ctx_, e);
  {
    std::lock_guard lock(hv->pending_mu_);
    hv->pending_.push_back(p);
  }
  uint64_t one = 1;
  (void)::write(hv->wake_fd_, &one, sizeof(one));
}

void LibxlHypervisor::eventLoop() {
  std::vector<pollfd> fds(8);
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    int nfds = static_cast<int>(fds.size()) - 1;  // the last slot is our eventfd
    int timeout_ms = -1;
    timeval now;
    ::gettimeofday(&now, nullptr);
    int rc = libxl_osevent_beforepoll(ctx_, &nfds, fds.data(), &timeout_ms, now);
    if (rc == ERROR_BUFFERFULL) {
      fds.resize(static_cast<size_t>(nfds) + 1);
      continue;
    }
    if (rc != 0) {
      if (options_.log) options_.log(LibxlLogLevel::kError, "libxl event loop: libxl_osevent_beforepoll failed; "
                                                            "domain events stop until xenctld restarts");
      return;
    }
    fds[nfds] = {wake_fd_, POLLIN, 0};
    for (int i = 0; i <= nfds; ++i) fds[i].revents = 0;
    if (::poll(fds.data(), static_cast<nfds_t>(nfds) + 1, timeout_ms) < 0 && errno != EINTR) {
      if (options_.log) options_.log(LibxlLogLevel::kError, absl::StrCat("libxl event loop: poll: ", std::strerror(errno)));
      return;
    }
    ::gettimeofday(&now, nullptr);
    libxl_osevent_afterpoll(ctx_, nfds, fds.data(), now);  // may call onLibxlEvent
    if (fds[nfds].revents & POLLIN) {
      uint64_t n;
      (void)::read(wake_fd_, &n, sizeof(n));
    }
    std::vector<Pending> batch;
    {
      std::lock_guard lock(pending_mu_);
      batch.swap(pending_);
    }
    if (!batch.empty()) {
      {
        std::lock_guard lock(actions_mu_);
        actions_.insert(actions_.end(), batch.begin(), batch.end());
      }
      actions_cv_.notify_one();
    }
  }
}

void LibxlHypervisor::actionLoop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(actions_mu_);
      actions_cv_.wait(lock, [this] { return actions_stop_ || !actions_.empty(); });
      if (actions_stop_) return;
      batch.swap(actions_);
    }
    for (const Pending& p : batch) handle(p);
  }
}

void LibxlHypervisor::handle(const Pending& p) {
  if (p.type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN) onShutdown(p.domid, p.shutdown_reason);
  if (p.type == LIBXL_EVENT_TYPE_DOMAIN_DEATH) onDeath(p.domid);
}

core::HypervisorEvent LibxlHypervisor::event(Kind kind, const std::string& uuid, const std::string& name,
                                             int64_t domid, DomainState state, std::string message) {
  return {kind, uuid, name, domid, state, std::move(message)};
}

void LibxlHypervisor::emit(const core::HypervisorEvent& e) {
  EventSink sink;
  {
    std::lock_guard lock(mu_);
    sink = sink_;
  }
  if (sink) sink(e);
}

void LibxlHypervisor::setEventSink(EventSink sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

void LibxlHypervisor::onShutdown(uint32_t domid, int reason) {
  Watch w;
  std::optional<Ours> ours;
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(domid);
    if (it == watches_.end()) return;
    w = it->second;
    if (auto o = ours_.find(w.uuid); o != ours_.end()) {
      // Another domid: this is the old domain of a restart, already handled.
      // Destroying: destroyDomain reports the end itself (through the death).
      if (o->second.domid != domid || !o->second.ending.empty()) return;
      ours = o->second;
    }
  }
  const ShutdownMeaning m = shutdownMeaningOf(reason, ours ? ours->spec : core::DomainSpec{});
  if (!ours || !m.action) {
    // Not ours to act on (or a suspend): report it, its toolstack decides.
    emit(event(m.kind, w.uuid, w.name, domid, m.state, reasonText(reason)));
    return;
  }
  if (m.report_first) emit(event(m.kind, w.uuid, w.name, domid, m.state, reasonText(reason)));
  const LifecycleAction action = *m.action;
  const std::string name = ours->spec.name;
  std::string note;

  if (action == LifecycleAction::kCoredumpDestroy || action == LifecycleAction::kCoredumpRestart) {
    LibxlLogger::Capture capture;
    const std::string core_file = absl::StrCat("/var/lib/xen/dump/", name);
    if (int rc = libxl_domain_core_dump(ctx_, domid, core_file.c_str(), nullptr); rc != 0)
      note = statusFromLibxl(rc, absl::StrCat("dumping the core of ", who(name), " to ", core_file), capture.text())
                 .ToString();
    else
      note = absl::StrCat("core written to ", core_file);
  }

  switch (action) {
    case LifecycleAction::kPreserve:
      if (!m.report_first) emit(event(m.kind, w.uuid, name, domid, m.state, reasonText(reason) + "; preserved"));
      return;
    case LifecycleAction::kDestroy:
    case LifecycleAction::kCoredumpDestroy: {
      {
        std::lock_guard lock(mu_);
        if (auto o = ours_.find(w.uuid); o != ours_.end() && o->second.domid == domid)
          o->second.ending = absl::StrCat(reasonText(reason), "; destroyed as its ", actionKeyFor(reason), " says",
                                          note.empty() ? "" : "; ", note);
      }
      LibxlLogger::Capture capture;
      if (int rc = libxl_domain_destroy(ctx_, domid, nullptr); rc != 0 && rc != ERROR_DOMAIN_NOTFOUND)
        emit(event(m.kind, w.uuid, name, domid, m.state,
                   statusFromLibxl(rc, absl::StrCat("destroying ", who(name), " after ", reasonText(reason)),
                                   capture.text())
                       .ToString()));
      return;  // the death watch reports kDestroyed
    }
    case LifecycleAction::kRestart:
    case LifecycleAction::kRenameRestart:
    case LifecycleAction::kCoredumpRestart:
      break;
  }

  // Restart as xl does: the old domain goes, the same spec is built again.
  libxl__evgen_domain_death* evgen = nullptr;
  {
    std::lock_guard lock(mu_);
    if (auto it = watches_.find(domid); it != watches_.end()) {
      evgen = it->second.evgen;
      watches_.erase(it);
    }
    ours_[w.uuid].domid = kNoDomid;  // events of the old domid are stale from here on
  }
  if (evgen) libxl_evdisable_domain_death(ctx_, evgen);
  auto gone = [&](std::string why) {
    {
      std::lock_guard lock(mu_);
      ours_.erase(w.uuid);
    }
    emit(event(Kind::kDestroyed, w.uuid, name, -1, DomainState::kStopped, std::move(why)));
  };
  {
    LibxlLogger::Capture capture;
    if (int rc = libxl_domain_destroy(ctx_, domid, nullptr); rc != 0 && rc != ERROR_DOMAIN_NOTFOUND)
      return gone(
          statusFromLibxl(rc, absl::StrCat("restarting ", who(name), ": destroying domid ", domid), capture.text())
              .ToString());
  }
  auto rebuilt = build(ours->spec, false);
  if (!rebuilt.ok()) return gone(absl::StrCat("restart failed: ", rebuilt.status().message()));
  std::string message = absl::StrCat(reasonText(reason), "; restarted as domid ", rebuilt->domid);
  if (!note.empty()) absl::StrAppend(&message, "; ", note);
  emit(event(Kind::kRebooted, w.uuid, name, rebuilt->domid, rebuilt->info.state, message));
}

void LibxlHypervisor::onDeath(uint32_t domid) {
  Watch w;
  bool report = true;
  std::string cause;  // stays empty for a domain that is not ours: its toolstack knows
  {
    std::lock_guard lock(mu_);
    auto it = watches_.find(domid);
    if (it == watches_.end()) return;
    w = it->second;
    watches_.erase(it);
    if (auto o = ours_.find(w.uuid); o != ours_.end()) {
      if (o->second.domid == domid) {
        cause = o->second.ending.empty() ? "destroyed outside xenctld (xl destroy or another toolstack)"
                                         : o->second.ending;
        ours_.erase(o);
      } else {
        report = false;  // the old domain of a restart
      }
    }
  }
  libxl_evdisable_domain_death(ctx_, w.evgen);
  if (report) emit(event(Kind::kDestroyed, w.uuid, w.name, domid, DomainState::kStopped, std::move(cause)));
}

void LibxlHypervisor::watch(const Present& p) { watch(p.domid, p.info.uuid, p.info.name); }

void LibxlHypervisor::watch(uint32_t domid, const std::string& uuid, const std::string& name) {
  // Under mu_ so that two threads never enable the same watch twice; the
  // libxl callback this may trigger takes only pending_mu_.
  std::lock_guard lock(mu_);
  if (stopping_ || watches_.count(domid)) return;
  libxl__evgen_domain_death* evgen = nullptr;
  LibxlLogger::Capture capture;
  if (int rc = libxl_evenable_domain_death(ctx_, domid, 0, &evgen); rc != 0) {
    if (options_.log)
      options_.log(LibxlLogLevel::kWarn,
                   statusFromLibxl(rc, absl::StrCat("watching domid ", domid, " for shutdown and death"),
                                   capture.text())
                       .ToString());
    return;
  }
  watches_[domid] = Watch{evgen, uuid, name};
}

// ---- observation -----------------------------------------------------------

Result<std::vector<LibxlHypervisor::Present>> LibxlHypervisor::present() {
  LibxlLogger::Capture capture;
  int n = 0;
  libxl_dominfo* list = libxl_list_domain(ctx_, &n);
  if (!list) return absl::UnavailableError(absl::StrCat("listing Xen domains: libxl_list_domain failed: ", capture.text()));
  std::vector<Present> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const libxl_dominfo& d = list[i];
    if (d.domid == 0) continue;
    out.push_back({d.domid, domainInfoOf(d, nameOf(ctx_, d.domid)), d.vcpu_max_id + 1, d.max_memkb,
                   d.domain_type == LIBXL_DOMAIN_TYPE_HVM});
  }
  libxl_dominfo_list_free(list, n);
  for (const Present& p : out) watch(p);
  return out;
}

Result<LibxlHypervisor::Present> LibxlHypervisor::lookup(const std::string& uuid) {
  uint32_t known = kNoDomid;
  {
    std::lock_guard lock(mu_);
    if (auto o = ours_.find(uuid); o != ours_.end()) known = o->second.domid;
  }
  if (known != kNoDomid) {
    // Ours: one hypercall for its domid, checked against the uuid.
    libxl_dominfo d;
    libxl_dominfo_init(&d);
    std::optional<Present> p;
    if (libxl_domain_info(ctx_, &d, known) == 0 && uuidText(d.uuid) == uuid)
      p = Present{d.domid, domainInfoOf(d, nameOf(ctx_, d.domid)), d.vcpu_max_id + 1, d.max_memkb,
                  d.domain_type == LIBXL_DOMAIN_TYPE_HVM};
    libxl_dominfo_dispose(&d);
    if (p) return *p;
  }
  XENCTL_ASSIGN_OR_RETURN(auto all, present());
  for (auto& p : all)
    if (p.info.uuid == uuid) return p;
  return absl::NotFoundError(absl::StrCat("no domain with uuid ", uuid, " is present in Xen"));
}

Status LibxlHypervisor::adopt(const core::DomainSpec& spec) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(spec.uuid));  // watched from here on
  std::lock_guard lock(mu_);
  ours_[spec.uuid] = Ours{spec, p.domid, ""};
  return absl::OkStatus();
}

Result<core::HypervisorInfo> LibxlHypervisor::hostInfo() {
  LibxlLogger::Capture capture;
  libxl_physinfo pi;
  libxl_physinfo_init(&pi);
  const int rc = libxl_get_physinfo(ctx_, &pi);
  const libxl_version_info* v = libxl_get_version_info(ctx_);
  if (rc != 0 || !v) {
    libxl_physinfo_dispose(&pi);
    return statusFromLibxl(rc != 0 ? rc : ERROR_FAIL, "reading Xen's host information", capture.text());
  }
  const uint64_t page = v->pagesize > 0 ? static_cast<uint64_t>(v->pagesize) : 4096;
  core::HypervisorInfo info{"xen",
                            absl::StrFormat("%d.%d%s", v->xen_version_major, v->xen_version_minor,
                                            v->xen_version_extra ? v->xen_version_extra : ""),
                            pi.nr_cpus, pi.total_pages * page >> 20, pi.free_pages * page >> 20};
  libxl_physinfo_dispose(&pi);
  return info;
}

Result<std::vector<core::DomainInfo>> LibxlHypervisor::listDomains() {
  XENCTL_ASSIGN_OR_RETURN(auto all, present());
  std::vector<core::DomainInfo> out;
  out.reserve(all.size());
  for (auto& p : all) out.push_back(std::move(p.info));
  return out;
}

Result<core::DomainInfo> LibxlHypervisor::domainInfo(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  return p.info;
}

// ---- lifecycle -------------------------------------------------------------

HostCpus hostCpusOf(libxl_ctx* ctx) {
  HostCpus h;
  h.max_cpus = std::max(0, libxl_get_max_cpus(ctx));
  h.online_cpus = std::max(0, libxl_get_online_cpus(ctx));
  int n = 0;
  if (libxl_cputopology* topo = libxl_get_cpu_topology(ctx, &n)) {
    for (int cpu = 0; cpu < n; ++cpu) {
      if (topo[cpu].node == LIBXL_CPUTOPOLOGY_INVALID_ENTRY) continue;
      if (topo[cpu].node >= h.node_cpus.size()) h.node_cpus.resize(topo[cpu].node + 1);
      h.node_cpus[topo[cpu].node].push_back(cpu);
    }
    libxl_cputopology_list_free(topo, n);
  }
  return h;
}

Result<LibxlHypervisor::Present> LibxlHypervisor::build(const core::DomainSpec& spec, bool paused) {
  const std::string what = absl::StrCat("creating ", who(spec.name));
  DomainConfig cfg;
  XENCTL_RETURN_IF_ERROR(buildDomainConfig(spec, cfg.get(), hostCpusOf(ctx_)));
  LibxlLogger::Capture capture;

  // xl would balloon Dom0 down here; a Dom0 for xenctld has fixed memory
  // (dom0_mem=...,max:...), so the host either has the memory or it does not.
  uint64_t need_kb = 0, free_kb = 0;
  if (libxl_domain_need_memory(ctx_, cfg.get(), kNoDomid, &need_kb) == 0 &&
      libxl_get_free_memory(ctx_, &free_kb) == 0 && need_kb > free_kb)
    return absl::ResourceExhaustedError(absl::StrCat(what, ": it needs ", (need_kb + 1023) / 1024,
                                                     " MiB but the host has ", free_kb / 1024, " MiB free"));

  uint32_t domid = kNoDomid;
  // libxl creates the domain paused; it runs once unpaused below.
  if (int rc = libxl_domain_create_new(ctx_, cfg.get(), &domid, nullptr, nullptr); rc != 0) {
    Status st = statusFromLibxl(rc, what, capture.text());
    // Only ERROR_ABORTED may leave a half-built domain; otherwise libxl has cleaned up.
    if (rc == ERROR_ABORTED && domid != kNoDomid) (void)libxl_domain_destroy(ctx_, domid, nullptr);
    return st;
  }
  {
    std::lock_guard lock(mu_);
    ours_[spec.uuid] = Ours{spec, domid, ""};
  }
  watch(domid, spec.uuid, spec.name);  // before unpausing: no shutdown can be missed
  if (!paused) {
    if (int rc = libxl_domain_unpause(ctx_, domid, nullptr); rc != 0) {
      Status st = statusFromLibxl(rc, absl::StrCat(what, ": unpausing domid ", domid), capture.text());
      {
        std::lock_guard lock(mu_);
        ours_[spec.uuid].ending = "destroyed: it could not be unpaused after its creation";
      }
      (void)libxl_domain_destroy(ctx_, domid, nullptr);
      return st;
    }
  }
  libxl_dominfo d;
  libxl_dominfo_init(&d);
  Present p;
  if (libxl_domain_info(ctx_, &d, domid) == 0) {
    p = Present{domid, domainInfoOf(d, spec.name), d.vcpu_max_id + 1, d.max_memkb,
                d.domain_type == LIBXL_DOMAIN_TYPE_HVM};
  } else {  // it already went away; the death watch reports it
    p.domid = domid;
    p.info = {spec.name, spec.uuid, domid, DomainState::kDying, spec.vcpus, spec.memory_mib, 0, spec.type};
  }
  libxl_dominfo_dispose(&d);
  return p;
}

Result<core::DomainInfo> LibxlHypervisor::createDomain(const core::DomainSpec& spec, bool paused) {
  XENCTL_ASSIGN_OR_RETURN(auto all, present());
  for (const auto& p : all) {
    if (p.info.uuid == spec.uuid)
      return absl::AlreadyExistsError(absl::StrCat(who(spec.name), ": uuid ", spec.uuid,
                                                   " is already present in Xen as domid ", p.domid));
    if (p.info.name == spec.name)
      return absl::AlreadyExistsError(
          absl::StrCat(who(spec.name), " is already present in Xen as domid ", p.domid));
  }
  XENCTL_ASSIGN_OR_RETURN(Present p, build(spec, paused));
  emit(event(Kind::kStarted, spec.uuid, spec.name, p.domid, p.info.state));
  return p.info;
}

Status LibxlHypervisor::shutdownDomain(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  if (!runningOrBlocked(p.info.state))
    return absl::FailedPreconditionError(absl::StrCat(
        who(p.info.name), " is ", av(core::toString(p.info.state)), ", a guest can only shut down while running; ",
        p.info.state == DomainState::kPaused ? "unpause it first, or destroy it" : "destroy it instead"));
  LibxlLogger::Capture capture;
  int rc = libxl_domain_shutdown(ctx_, p.domid, nullptr);
  // An hvm guest without PV drivers does not read xenstore's control/shutdown;
  // press its ACPI power button instead, as xl shutdown -F does.
  if (rc == ERROR_NOPARAVIRT && p.hvm) rc = libxl_send_trigger(ctx_, p.domid, LIBXL_TRIGGER_POWER, 0, nullptr);
  if (rc != 0) return statusFromLibxl(rc, absl::StrCat("shutting down ", who(p.info.name)), capture.text());
  return absl::OkStatus();
}

Status LibxlHypervisor::rebootDomain(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  if (!runningOrBlocked(p.info.state))
    return absl::FailedPreconditionError(absl::StrCat(who(p.info.name), " is ", av(core::toString(p.info.state)),
                                                      "; only a running guest can reboot"));
  LibxlLogger::Capture capture;
  int rc = libxl_domain_reboot(ctx_, p.domid, nullptr);
  if (rc == ERROR_NOPARAVIRT && p.hvm) rc = libxl_send_trigger(ctx_, p.domid, LIBXL_TRIGGER_RESET, 0, nullptr);
  if (rc != 0) return statusFromLibxl(rc, absl::StrCat("rebooting ", who(p.info.name)), capture.text());
  return absl::OkStatus();
}

Status LibxlHypervisor::destroyDomain(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  {
    std::lock_guard lock(mu_);
    if (auto o = ours_.find(uuid); o != ours_.end() && o->second.domid == p.domid)
      o->second.ending = "destroyed through xenctld";
  }
  LibxlLogger::Capture capture;
  if (int rc = libxl_domain_destroy(ctx_, p.domid, nullptr); rc != 0) {
    {
      std::lock_guard lock(mu_);
      if (auto o = ours_.find(uuid); o != ours_.end()) o->second.ending.clear();
    }
    return statusFromLibxl(rc, absl::StrCat("destroying ", who(p.info.name)), capture.text());
  }
  return absl::OkStatus();  // kDestroyed comes from the death watch
}

Status LibxlHypervisor::pauseDomain(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  if (!runningOrBlocked(p.info.state))
    return absl::FailedPreconditionError(absl::StrCat(who(p.info.name), " is ", av(core::toString(p.info.state)),
                                                      "; only a running domain can be paused"));
  LibxlLogger::Capture capture;
  if (int rc = libxl_domain_pause(ctx_, p.domid, nullptr); rc != 0)
    return statusFromLibxl(rc, absl::StrCat("pausing ", who(p.info.name)), capture.text());
  emit(event(Kind::kPaused, uuid, p.info.name, p.domid, DomainState::kPaused));
  return absl::OkStatus();
}

Status LibxlHypervisor::unpauseDomain(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  if (p.info.state != DomainState::kPaused)
    return absl::FailedPreconditionError(
        absl::StrCat(who(p.info.name), " is ", av(core::toString(p.info.state)), ", not paused"));
  LibxlLogger::Capture capture;
  if (int rc = libxl_domain_unpause(ctx_, p.domid, nullptr); rc != 0)
    return statusFromLibxl(rc, absl::StrCat("unpausing ", who(p.info.name)), capture.text());
  emit(event(Kind::kUnpaused, uuid, p.info.name, p.domid, DomainState::kRunning));
  return absl::OkStatus();
}

Status LibxlHypervisor::setVcpus(const std::string& uuid, uint32_t vcpus) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  if (vcpus < 1 || vcpus > p.max_vcpus)
    return absl::InvalidArgumentError(absl::StrCat(who(p.info.name), ": vcpus ", vcpus, " is out of range; use 1 to ",
                                                   p.max_vcpus, " (maxvcpus)"));
  LibxlLogger::Capture capture;
  libxl_bitmap online;
  libxl_bitmap_init(&online);
  int rc = libxl_bitmap_alloc(ctx_, &online, static_cast<int>(p.max_vcpus));
  if (rc == 0) {
    for (uint32_t i = 0; i < vcpus; ++i) libxl_bitmap_set(&online, static_cast<int>(i));
    rc = libxl_set_vcpuonline(ctx_, p.domid, &online, nullptr);
  }
  libxl_bitmap_dispose(&online);
  if (rc != 0)
    return statusFromLibxl(rc, absl::StrCat("setting ", who(p.info.name), " to ", vcpus, " vcpus"), capture.text());
  emit(event(Kind::kResourcesChanged, uuid, p.info.name, p.domid, p.info.state,
             absl::StrCat("vcpus online: ", vcpus)));
  return absl::OkStatus();
}

Result<std::string> LibxlHypervisor::consolePath(const std::string& uuid) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  LibxlLogger::Capture capture;
  char* path = nullptr;
  int rc = libxl_console_get_tty(ctx_, p.domid, 0, LIBXL_CONSOLE_TYPE_PV, &path);
  if (rc != 0 && p.hvm) rc = libxl_console_get_tty(ctx_, p.domid, 0, LIBXL_CONSOLE_TYPE_SERIAL, &path);
  if (rc != 0 || !path) {
    std::free(path);
    return Status(absl::StatusCode::kFailedPrecondition,
                  statusFromLibxl(rc != 0 ? rc : ERROR_FAIL,
                                  absl::StrCat("finding the console of ", who(p.info.name),
                                               " (is xenconsoled running?)"),
                                  capture.text())
                      .message());
  }
  std::string out = path;
  std::free(path);
  return out;
}

Status LibxlHypervisor::setMemory(const std::string& uuid, uint64_t memory_mib) {
  XENCTL_ASSIGN_OR_RETURN(Present p, lookup(uuid));
  uint64_t max_mib = p.max_memkb / 1024;
  {
    std::lock_guard lock(mu_);
    if (auto o = ours_.find(uuid); o != ours_.end()) max_mib = o->second.spec.maxmem_mib;
  }
  if (memory_mib < core::kMinMemoryMib || memory_mib > max_mib)
    return absl::InvalidArgumentError(absl::StrCat(who(p.info.name), ": memory ", memory_mib,
                                                   " MiB is out of range; use ", core::kMinMemoryMib, " to ", max_mib,
                                                   " MiB (maxmem)"));
  LibxlLogger::Capture capture;
  uint64_t free_kb = 0;
  if (memory_mib > p.info.memory_mib && libxl_get_free_memory(ctx_, &free_kb) == 0 &&
      (memory_mib - p.info.memory_mib) * 1024 > free_kb)
    return absl::ResourceExhaustedError(absl::StrCat(who(p.info.name), ": growing to ", memory_mib,
                                                     " MiB needs more than the host's ", free_kb / 1024, " MiB free"));
  // Absolute and enforced, as `xl mem-set` does: Xen's limit follows the
  // target, so the guest cannot balloon past it on its own.
  if (int rc = libxl_set_memory_target(ctx_, p.domid, static_cast<int64_t>(memory_mib * 1024), 0, 1); rc != 0)
    return statusFromLibxl(rc, absl::StrCat("setting the memory of ", who(p.info.name), " to ", memory_mib, " MiB"),
                           capture.text());
  emit(event(Kind::kResourcesChanged, uuid, p.info.name, p.domid, p.info.state,
             absl::StrCat("memory target: ", memory_mib, " MiB")));
  return absl::OkStatus();
}

}  // namespace xenctl::xen
