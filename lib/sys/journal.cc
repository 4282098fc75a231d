#include "lib/sys/journal.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>

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

bool sendToJournal(int priority, const std::string& message,
                   const std::vector<std::pair<std::string, std::string>>& fields) {
  std::vector<std::string> items;
  items.reserve(fields.size() + 2);
  items.push_back("MESSAGE=" + message);
  items.push_back("PRIORITY=" + std::to_string(priority));
  for (const auto& [k, v] : fields) items.push_back(k + "=" + v);
  std::vector<iovec> iov;
  iov.reserve(items.size());
  for (auto& s : items) iov.push_back({s.data(), s.size()});
  return ::sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) == 0;
}

}  // namespace xenctl::sys
