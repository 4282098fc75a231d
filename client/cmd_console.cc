// vm-console NAME [--read-only]: the guest's console. On a terminal the
// session is interactive in raw mode and Ctrl-] leaves (as with `xl
// console`); --read-only prints what the guest writes until the console
// closes or the command is stopped.
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "client/commands.h"

namespace xenctl::client {
namespace {

constexpr char kLeaveKey = 0x1d;  // Ctrl-]

// The terminal in raw mode for the life of the object, restored after.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

void writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stdout gone: nothing left to show it to
    data.remove_prefix(static_cast<size_t>(n));
  }
}

class ConsoleCommand : public Command {
 public:
  void setup(CLI::App& app) override {
    app.add_option("NAME", name_, "Domain")->type_name("")->required();
    app.add_flag("--read-only", read_only_, "Only print what the guest writes; send nothing");
  }

  int run(Session& s) override {
    Result<Client*> c = s.client();
    if (!c.ok()) return s.fail(c.status());
    const bool terminal = ::isatty(STDIN_FILENO);
    std::optional<RawTerminal> raw;
    if (!read_only_ && terminal) {
      writeAll(STDERR_FILENO, "Attached to the console of " + name_ + "; Ctrl-] leaves.\r\n");
      raw.emplace(STDIN_FILENO);
    }
    bool stdin_done = false;
    auto input = [&]() -> std::optional<std::string> {
      if (stdin_done) return std::nullopt;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) return std::string();
      char buf[1024];
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) return std::string();
      if (n <= 0) return std::nullopt;  // end of input: leave
      std::string keys(buf, static_cast<size_t>(n));
      if (auto at = keys.find(kLeaveKey); at != std::string::npos) {
        keys.resize(at);
        stdin_done = true;  // send what came before it, then leave
      }
      return keys;
    };
    auto output = [](std::string_view data) { writeAll(STDOUT_FILENO, data); };
    Result<std::string> closed = (*c)->attachConsole(name_, read_only_, output, input);
    raw.reset();
    if (!closed.ok()) return s.fail(closed.status());
    if (!closed->empty()) writeAll(STDERR_FILENO, "\r\nvm-console: " + *closed + "\n");
    else if (raw || (!read_only_ && terminal)) writeAll(STDERR_FILENO, "\r\n");
    return kExitOk;
  }

 private:
  std::string name_;
  bool read_only_ = false;
};

}  // namespace

std::unique_ptr<Command> makeConsoleCommand() { return std::make_unique<ConsoleCommand>(); }

}  // namespace xenctl::client
