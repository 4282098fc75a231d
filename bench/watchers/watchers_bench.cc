// bench/watchers: prints figures, asserts nothing.
//
// What idle WatchEvents streams cost xenctld (issue 17 part 3, issue 13
// part 7): starts the real xenctld (test hypervisor) with [daemon]
// max_streams_per_caller above --watchers, defines --domains domains, and
// measures its thread count (/proc/PID/status Threads) and ListDomains
// latency (p50/p99) with no watcher; then opens --watchers WatchEvents
// streams over --channels connections (one client thread drives them all,
// on a completion queue), checks that each is served (defines a probe domain
// each second until every watcher has its event, or 60 s pass), and
// measures the same again with them all open. Target: the thread count
// stays flat and unary latency unchanged.
//
//   build/bench/watchers/watchers_bench --xenctld build/daemon/xenctld [--watchers 5000]
//       [--channels 10] [--domains 100] [--lists 2000] [--max-streams WATCHERS+64]
//
// ListDomains is timed a third time after the watchers are cancelled, so
// that the machine's own noise shows beside any difference they make.
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/common/xenctld_bench.h"

using namespace xenctl::bench;

namespace {

// One WatchEvents stream: its context and reader live as long as the call.
struct Watcher {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientAsyncReader<v1::DomainEvent>> reader;
  v1::DomainEvent event;
  grpc::Status status;
  std::atomic<uint64_t> events{0};
  std::atomic<bool> ended{false};
};

// Tags on the queue: the watcher's index times 3 plus what completed.
enum Step : uintptr_t { kStarted = 0, kRead = 1, kFinished = 2 };

void drain(grpc::CompletionQueue& cq, std::vector<std::unique_ptr<Watcher>>& ws) {
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
    const auto t = reinterpret_cast<uintptr_t>(tag);
    Watcher& w = *ws[t / 3];
    const void* base = reinterpret_cast<void*>(t - t % 3);
    switch (t % 3) {
      case kStarted:
      case kRead:
        if (t % 3 == kRead && ok) w.events.fetch_add(1);
        if (ok)
          w.reader->Read(&w.event, reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(base) + kRead));
        else
          w.reader->Finish(&w.status, reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(base) + kFinished));
        break;
      case kFinished: w.ended = true; break;
    }
  }
}

struct Figures {
  long threads;
  Percentiles lists;
};

}  // namespace

int main(int argc, char** argv) {
  std::string xenctld = "build/daemon/xenctld";
  int watchers = 5000, channels = 10, domains = 100, lists = 2000, max_streams = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--xenctld") xenctld = argv[i + 1];
    else if (k == "--watchers") watchers = std::stoi(argv[i + 1]);
    else if (k == "--channels") channels = std::stoi(argv[i + 1]);
    else if (k == "--domains") domains = std::stoi(argv[i + 1]);
    else if (k == "--lists") lists = std::stoi(argv[i + 1]);
    else if (k == "--max-streams") max_streams = std::stoi(argv[i + 1]);
  }
  if (max_streams < 0) max_streams = watchers + 64;
  // Each watcher is an HTTP/2 stream, not a descriptor; the limit is raised for the daemon's sake.
  rlimit nofile{65536, 65536};
  (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  XenctldProcess daemon(xenctld, absl::StrFormat("[daemon]\nmax_streams_per_caller = %d\n", max_streams));
  ApiClient c(daemon.address());
  for (int i = 0; i < domains; ++i) c.create(absl::StrFormat("dom%04d", i), /*define_only=*/true);
  c.timeLists(100);  // warm
  const Figures idle{procStatus(daemon.pid(), "Threads"), percentiles(c.timeLists(lists))};

  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Watcher>> ws;
  std::vector<std::unique_ptr<v1::DomainService::Stub>> stubs;
  for (int i = 0; i < channels; ++i) stubs.push_back(v1::DomainService::NewStub(ownChannel(daemon.address())));
  const auto t_open = Clock::now();
  for (int i = 0; i < watchers; ++i) ws.push_back(std::make_unique<Watcher>());
  std::thread drainer([&] { drain(cq, ws); });
  for (int i = 0; i < watchers; ++i) {
    Watcher& w = *ws[i];
    w.reader = stubs[i % channels]->PrepareAsyncWatchEvents(&w.ctx, v1::WatchEventsRequest(), &cq);
    w.reader->StartCall(reinterpret_cast<void*>(static_cast<uintptr_t>(i) * 3 + kStarted));
  }
  // Served means it hears an event: define a probe domain each second until all have one.
  int live = 0, ended = 0, probes = 0;
  double served_s = -1;
  for (; probes < 60; ++probes) {
    c.create(absl::StrFormat("probe%02d", probes), /*define_only=*/true);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a benchmark's pacing, not a test's wait
    live = ended = 0;
    for (auto& w : ws) live += w->events > 0, ended += w->ended;
    if (live + ended >= watchers) break;
  }
  if (live == watchers) served_s = ms(Clock::now() - t_open) / 1000;
  const long threads_open = procStatus(daemon.pid(), "Threads");
  const long rss_open_kib = procStatus(daemon.pid(), "VmRSS");
  const Figures open{threads_open, percentiles(c.timeLists(lists))};

  std::map<std::string, int> errors;
  for (auto& w : ws)
    if (w->ended) ++errors[absl::StrFormat("%d %s", w->status.error_code(), w->status.error_message())];
  for (auto& w : ws) w->ctx.TryCancel();
  for (int i = 0; i < 100; ++i) {  // the cancellations reach the daemon
    int done = 0;
    for (auto& w : ws) done += w->ended;
    if (done == watchers) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const Figures closed{procStatus(daemon.pid(), "Threads"), percentiles(c.timeLists(lists))};
  const int status = daemon.stop();
  cq.Shutdown();
  drainer.join();

  std::printf("bench/watchers  xenctld %s, test hypervisor, Unix socket, %d domains defined\n", xenctld.c_str(),
              domains);
  std::printf("  %-34s threads %4ld   ListDomains p50 %.3f ms  p99 %.3f ms  max %.3f ms over %d calls\n",
              "no watcher", idle.threads, idle.lists.p50, idle.lists.p99, idle.lists.max, lists);
  std::printf("  %-34s threads %4ld   ListDomains p50 %.3f ms  p99 %.3f ms  max %.3f ms over %d calls\n",
              absl::StrFormat("%d WatchEvents open (%d served)", watchers, live).c_str(), open.threads,
              open.lists.p50, open.lists.p99, open.lists.max, lists);
  std::printf("  ratios open/none                   threads %.2fx   p50 %.2fx   p99 %.2fx\n",
              double(open.threads) / idle.threads, open.lists.p50 / idle.lists.p50, open.lists.p99 / idle.lists.p99);
  if (served_s >= 0)
    std::printf("  every watcher served after        %.1f s (%d probe domains)\n", served_s, probes + 1);
  else
    std::printf("  watchers served                   %d of %d after %d probes; %d ended\n", live, watchers, probes,
                ended);
  for (const auto& [e, n] : errors) std::printf("  ended: %d x (code %s)\n", n, e.c_str());
  std::printf("  %-34s threads %4ld   ListDomains p50 %.3f ms  p99 %.3f ms  max %.3f ms over %d calls\n",
              "after cancelling them all", closed.threads, closed.lists.p50, closed.lists.p99, closed.lists.max, lists);
  std::printf("  daemon RSS with the watchers open %.1f MiB\n", rss_open_kib / 1024.0);
  std::printf("  xenctld exit status               %d\n", status);
  return 0;
}
