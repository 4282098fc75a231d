// xenctl-fetch: one download or upload for xenctld, with CurlFetcher, in a
// process of its own so that the daemon never maps libcurl and its
// dependencies nor parses HTTP, FTP or TLS itself. The protocol is
// HelperFetcher's (lib/image/helper_fetcher.h): not a command for people.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "lib/image/curl_fetcher.h"
#include "lib/image/helper_fetcher.h"

namespace {

using namespace xenctl;

constexpr int kReports = 3;

bool writeAll(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

int finish(const Status& s) {
  writeAll(kReports, image::encodeError(s));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (std::string_view(argv[1]) != "get" && std::string_view(argv[1]) != "put")) {
    std::fprintf(stderr, "xenctl-fetch is run by xenctld (get|put URI [options], reports on fd 3)\n");
    return 2;
  }
  // SIGTERM from xenctld cancels the transfer the way a stop_token does.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  std::stop_source stop;
  std::thread([&stop, term] {
    int sig = 0;
    sigwait(&term, &sig);
    stop.request_stop();
  }).detach();

  const std::string mode = argv[1];
  const std::string uri = argv[2];
  Result<core::FetchOptions> options = image::parseHelperArgs(std::vector<std::string>(argv + 3, argv + argc));
  if (!options.ok()) return finish(options.status());
  options->stop = stop.get_token();
  options->progress = [](const core::FetchProgress& p) { writeAll(kReports, image::encodeProgress(p)); };
  auto fetcher = image::CurlFetcher::create();
  if (!fetcher.ok()) return finish(fetcher.status());

  if (mode == "get") {
    const auto r = (*fetcher)->fetch(
        uri,
        [](std::string_view chunk) -> Status {
          if (!writeAll(STDOUT_FILENO, chunk)) return errnoStatus(errno, "passing the download to xenctld");
          return absl::OkStatus();
        },
        *options);
    if (!r.ok()) return finish(r.status());
    writeAll(kReports, image::encodeDone(r->bytes, r->attempts, r->resumes));
    return 0;
  }
  const auto r = (*fetcher)->put(
      uri,
      [](char* buf, size_t max) -> Result<size_t> {
        for (;;) {
          const ssize_t n = ::read(STDIN_FILENO, buf, max);
          if (n >= 0) return static_cast<size_t>(n);
          if (errno != EINTR) return errnoStatus(errno, "reading the upload from xenctld");
        }
      },
      *options);
  if (!r.ok()) return finish(r.status());
  writeAll(kReports, image::encodeDone(*r, 1, 0));
  return 0;
}
