#include "lib/storage/lvm_shell.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lib/sys/spawn.h"
#include "lib/sys/unique_fd.h"

extern char** environ;

namespace xenctl::storage {
namespace {

using json = nlohmann::json;
using sys::UniqueFd;

constexpr int kReportFd = 3;       // LVM_REPORT_FD in the shell
constexpr int kProcessed = 1;      // lvm2's ECMD_PROCESSED
constexpr size_t kMaxChatter = 64 * 1024;

std::string text(const json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// The return code of the "shell" status entry that ends a command's log.
std::optional<int> returnCode(const json& doc) {
  auto log = doc.find("log");
  if (log == doc.end() || !log->is_array()) return std::nullopt;
  std::optional<int> code;
  for (const auto& e : *log) {
    if (!e.is_object() || text(e, "log_context") != "shell" || text(e, "log_type") != "status") continue;
    int c = 0;
    if (absl::SimpleAtoi(text(e, "log_ret_code"), &c)) code = c;
  }
  return code;
}

// The error messages of a log, one per line.
std::string errorsOf(const json& doc) {
  std::vector<std::string> out;
  auto log = doc.find("log");
  if (log != doc.end() && log->is_array())
    for (const auto& e : *log)
      if (e.is_object() && text(e, "log_type") == "error") out.push_back(text(e, "log_message"));
  return absl::StrJoin(out, "\n");
}

std::vector<std::string> shellEnvironment(const std::string& profile) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const absl::string_view kv(*e);
    if (absl::StartsWith(kv, "LVM_REPORT_FD=") || absl::StartsWith(kv, "LVM_COMMAND_PROFILE=") ||
        absl::StartsWith(kv, "LC_ALL="))
      continue;
    env.emplace_back(kv);
  }
  env.push_back(absl::StrCat("LVM_REPORT_FD=", kReportFd));
  env.push_back(absl::StrCat("LVM_COMMAND_PROFILE=", profile));
  env.push_back("LC_ALL=C");
  // Our descriptors are close-on-exec; anything else is not for lvm to report.
  env.push_back("LVM_SUPPRESS_FD_WARNINGS=1");
  return env;
}

}  // namespace

Result<std::string> lvmShellLine(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("no lvm command to run");
  std::vector<std::string> words;
  for (const auto& a : argv) {
    if (absl::StrContains(a, '\n'))
      return absl::InvalidArgumentError(absl::StrCat("lvm argument <", a, "> holds a newline, which the lvm shell cannot take"));
    const bool bare = !a.empty() && a[0] != '#' && a[0] != '\'' && a[0] != '"' &&
                      std::none_of(a.begin(), a.end(), [](char c) { return absl::ascii_isspace(c); });
    if (bare) {
      words.push_back(a);
    } else if (!absl::StrContains(a, '\'')) {
      words.push_back(absl::StrCat("'", a, "'"));
    } else if (!absl::StrContains(a, '"')) {
      words.push_back(absl::StrCat("\"", a, "\""));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("lvm argument <", a, "> holds both quote marks, which the lvm shell cannot take"));
    }
  }
  return absl::StrJoin(words, " ");
}

// One `lvm` process in shell mode and the descriptors that talk to it.
class LvmShells::Shell {
 public:
  static Result<std::unique_ptr<Shell>> start(const LvmShellOptions& o);
  ~Shell() { stop(); }

  /// Sends one command line. UNAVAILABLE when the shell is gone: the
  /// command did not reach it.
  Status send(const std::string& line);
  /// The JSON answer to the line sent; also what the command printed on
  /// stdout and stderr. Any failure leaves the shell broken.
  struct Answer {
    json doc;
    std::string text, chatter;
  };
  Result<Answer> answer(absl::Time deadline, const std::string& what);
  bool broken() const { return broken_; }
  pid_t pid() const { return child_.pid(); }

 private:
  Shell() = default;
  void stop();
  Status fail(Status st) {
    broken_ = true;
    return st;
  }

  sys::Child child_;
  UniqueFd in_, out_, err_, report_;
  bool broken_ = false;
};

Result<std::unique_ptr<LvmShells::Shell>> LvmShells::Shell::start(const LvmShellOptions& o) {
  // stdin is a socket so that writing to a dead shell is an error (send with
  // MSG_NOSIGNAL), never a SIGPIPE.
  int in[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return errnoStatus(errno, "lvm shell: socketpair");
  UniqueFd in_ours(in[0]), in_child(in[1]);
  sys::Pipe out, err, rep;
  for (sys::Pipe* p : {&out, &err, &rep}) {
    auto made = sys::makePipe();
    if (!made.ok()) return annotate(made.status(), "lvm shell");
    *p = *std::move(made);
  }
  // Its own process group: a ^C meant for a foreground xenctld must not kill
  // LVM in the middle of a command.
  auto child = sys::spawn({.argv = {o.lvm},
                           .env = shellEnvironment(o.profile),
                           .fds = {{STDIN_FILENO, in_child.get()},
                                   {STDOUT_FILENO, out.write.get()},
                                   {STDERR_FILENO, err.write.get()},
                                   {kReportFd, rep.write.get()}},
                           .own_process_group = true});
  if (!child.ok()) return absl::IsNotFound(child.status()) ? child.status() : annotate(child.status(), "lvm shell");

  std::unique_ptr<Shell> s(new Shell());
  s->child_ = *std::move(child);
  s->in_ = std::move(in_ours);
  s->out_ = std::move(out.read);
  s->err_ = std::move(err.read);
  s->report_ = std::move(rep.read);
  for (int fd : {s->out_.get(), s->err_.get(), s->report_.get()}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  return s;
}

void LvmShells::Shell::stop() {
  if (!child_.running()) return;
  if (!broken_) {
    // End of input ends the shell; give it a moment before the kill.
    in_.reset();
    pollfd p{child_.pidfd(), POLLIN, 0};
    if (child_.pidfd() >= 0 && ::poll(&p, 1, 1000) == 1) {
      child_.wait();
      return;
    }
  }
  child_.kill();
}

Status LvmShells::Shell::send(const std::string& line) {
  // What the last command printed after its answer is not this one's.
  char buf[4096];
  for (const UniqueFd* fd : {&out_, &err_, &report_})
    while (::read(fd->get(), buf, sizeof(buf)) > 0) {
    }
  const std::string input = line + "\n";
  for (size_t sent = 0; sent < input.size();) {
    const ssize_t n = ::send(in_.get(), input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return fail(absl::UnavailableError(absl::StrCat("the lvm shell (pid ", pid(), ") is gone: ", std::strerror(errno))));
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

Result<LvmShells::Shell::Answer> LvmShells::Shell::answer(absl::Time deadline, const std::string& what) {
  Answer a;
  auto chatter = [&a](const char* buf, size_t n) {
    a.chatter.append(buf, n);
    if (a.chatter.size() > kMaxChatter) a.chatter.erase(0, a.chatter.size() - kMaxChatter);
  };
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration())
      return fail(absl::DeadlineExceededError(absl::StrCat("`", what, "` ran longer than its deadline in the lvm shell "
                                                           "(pid ", pid(), "), which was killed")));
    pollfd fds[4] = {{report_.get(), POLLIN, 0}, {out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0},
                     {child_.pidfd(), POLLIN, 0}};
    const nfds_t n = child_.pidfd() >= 0 ? 4 : 3;
    char buf[65536];
    if (::poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) < 0) {
      if (errno == EINTR) continue;
      return fail(errnoStatus(errno, "lvm shell: poll"));
    }
    bool closed = false;
    for (int i = 0; i < 3; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {
        closed = true;
        continue;
      }
      if (i == 0) {
        a.text.append(buf, static_cast<size_t>(got));
      } else {
        chatter(buf, static_cast<size_t>(got));
      }
    }
    if (!a.text.empty()) {
      // The answer is whole when it parses: lvm writes it in one go, so a
      // failed parse only means more is coming.
      const absl::string_view t = absl::StripTrailingAsciiWhitespace(a.text);
      if (!t.empty() && t.back() == '}') {
        json doc = json::parse(t.begin(), t.end(), nullptr, /*allow_exceptions=*/false);
        if (!doc.is_discarded()) {
          if (!doc.is_object() || !doc.contains("log"))
            return fail(absl::InternalError(absl::StrCat(
                "`", what, "`: the lvm shell answered without a command log; is its profile in /etc/lvm/profile?")));
          a.doc = std::move(doc);
          return a;
        }
      }
    }
    if (closed || (n == 4 && (fds[3].revents & POLLIN)))
      return fail(absl::UnavailableError(absl::StrCat("`", what, "`: the lvm shell (pid ", pid(), ") exited: ",
                                                      absl::StripAsciiWhitespace(a.chatter))));
  }
}

LvmShells::LvmShells(LvmShellOptions options) : opt_(std::move(options)) {}

LvmShells::~LvmShells() = default;

size_t LvmShells::started() const {
  std::lock_guard lock(mu_);
  return started_;
}

Result<std::unique_ptr<LvmShells::Shell>> LvmShells::take() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !idle_.empty() || busy_ < opt_.max_shells; });
  ++busy_;
  if (!idle_.empty()) {
    auto s = std::move(idle_.back());
    idle_.pop_back();
    return s;
  }
  ++started_;
  lock.unlock();
  auto s = Shell::start(opt_);
  if (!s.ok()) {
    lock.lock();
    --busy_;
    cv_.notify_one();
  }
  return s;
}

void LvmShells::give(std::unique_ptr<Shell> shell) {
  {
    std::lock_guard lock(mu_);
    --busy_;
    if (!shell->broken()) idle_.push_back(std::move(shell));
    cv_.notify_one();
  }
  // A broken shell (when it was not kept) is killed here, outside the lock.
}

Result<core::ProcessResult> LvmShells::run(const std::vector<std::string>& argv, absl::Duration timeout) {
  XENCTL_ASSIGN_OR_RETURN(const std::string line, lvmShellLine(argv));
  const absl::Time deadline = absl::Now() + timeout;
  std::unique_ptr<Shell> shell;
  // An idle shell may have died since its last command (killed, or LVM
  // crashed); the command never reached it, so it goes to a fresh one.
  for (int attempt = 0;; ++attempt) {
    XENCTL_ASSIGN_OR_RETURN(shell, take());
    Status sent = shell->send(line);
    if (sent.ok()) break;
    give(std::move(shell));
    if (attempt == 1) return annotate(sent, absl::StrCat("`", line, "`"));
  }
  auto answer = shell->answer(deadline, line);
  if (!answer.ok()) {
    give(std::move(shell));
    return answer.status();
  }
  const std::optional<int> code = returnCode(answer->doc);
  if (!code) {
    give(std::move(shell));
    return absl::InternalError(absl::StrCat("`", line, "`: the lvm shell's log has no status for the command"));
  }
  core::ProcessResult r;
  r.exit_code = *code == kProcessed ? 0 : *code;
  r.stdout_text = std::move(answer->text);
  r.output = std::move(answer->chatter);
  if (r.exit_code != 0) {
    // The failed command's messages: `lastlog` answers with its whole log.
    std::string errors = errorsOf(answer->doc);
    if (shell->send("lastlog").ok()) {
      auto last = shell->answer(deadline, absl::StrCat(line, "; lastlog"));
      if (last.ok()) errors = errorsOf(last->doc);
    }
    r.output = absl::StrCat(errors, errors.empty() || r.output.empty() ? "" : "\n", r.output);
  }
  give(std::move(shell));
  return r;
}

}  // namespace xenctl::storage
