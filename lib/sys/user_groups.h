// The groups of a Unix user, as the system's user database (NSS) says.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace xenctl::sys {

/// `gid` and the supplementary groups of the user `uid` (getgrouplist over
/// its name), sorted and unique; `gid` alone when the uid has no entry in
/// the user database. A peer's SO_PEERCRED carries only its primary gid.
std::vector<int64_t> groupsOfUser(uid_t uid, gid_t gid);

}  // namespace xenctl::sys
