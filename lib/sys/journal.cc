#include "lib/sys/journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "lib/sys/unique_fd.h"
#include "lib/sys/unix_socket.h"

namespace xenctl::sys {

bool stderrIsJournal() {
  // JOURNAL_STREAM is "DEV:INODE" of the stream; it is inherited by
  // children, so it counts only while stderr is still that stream.
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st;
  if (::fstat(2, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

std::string encodeJournalRecord(int priority, const std::string& message,
                                const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  const auto field = [&out](const std::string& name, const std::string& value) {
    out += name;
    if (value.find('\n') == std::string::npos) {
      out += '=';
      out += value;
    } else {
      // NAME\n, the value's size as 64-bit little-endian, the value.
      out += '\n';
      uint64_t n = value.size();
      for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
      out += value;
    }
    out += '\n';
  };
  field("MESSAGE", message);
  field("PRIORITY", std::to_string(priority));
  for (const auto& [k, v] : fields) field(k, v);
  return out;
}

bool sendToJournalAt(const std::string& socket, int priority, const std::string& message,
                     const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string record = encodeJournalRecord(priority, message, fields);
  iovec iov{record.data(), record.size()};
  Status sent = sendUnixDatagram(socket, {iov});
  if (sent.ok()) return true;
  // EMSGSIZE or ENOBUFS (or another errno of the same code: trying the
  // memfd then costs nothing).
  if (sent.code() != absl::ErrnoToStatusCode(EMSGSIZE) && sent.code() != absl::ErrnoToStatusCode(ENOBUFS))
    return false;
  // Too big for one datagram: the record goes in a sealed memfd, passed
  // with an empty datagram (as sd_journal_sendv does).
  UniqueFd mem(::memfd_create("xenctl-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return false;
  for (size_t off = 0; off < record.size();) {
    const ssize_t n = ::write(mem.get(), record.data() + off, record.size() - off);
    if (n <= 0) return false;
    off += n;
  }
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) return false;
  return sendUnixDatagram(socket, {}, mem.get()).ok();
}

bool sendToJournal(int priority, const std::string& message,
                   const std::vector<std::pair<std::string, std::string>>& fields) {
  return sendToJournalAt("/run/systemd/journal/socket", priority, message, fields);
}

}  // namespace xenctl::sys
