#include "lib/sys/user_groups.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <string>

namespace xenctl::sys {

std::vector<int64_t> groupsOfUser(uid_t uid, gid_t gid) {
  std::vector<int64_t> out = {static_cast<int64_t>(gid)};
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buf(size > 0 ? static_cast<size_t>(size) : 16384, '\0');
  passwd pw;
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || !found) return out;
  std::vector<gid_t> groups(64);
  int n = static_cast<int>(groups.size());
  if (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));  // n now says how many there are
    if (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) return out;
  }
  for (int i = 0; i < n; ++i) out.push_back(static_cast<int64_t>(groups[static_cast<size_t>(i)]));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace xenctl::sys
