// Helpers of the image tests: archives built in memory with libarchive's
// writer, temporary directories, chunked sources.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lib/image/archive_extractor.h"
#include "tests/support/temp_dir.h"

namespace xenctl::image::testing {

using xenctl::test_support::readAll;
using xenctl::test_support::TempDir;

inline void writeFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

/// Everything below `dir`, as sorted relative names ("a", "a/b" …).
inline std::vector<std::string> listTree(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    out.push_back(std::filesystem::relative(it->path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

struct Entry {
  std::string name;
  mode_t type = AE_IFREG;
  mode_t perm = 0644;
  std::string data;
  std::string symlink;   ///< for AE_IFLNK
  std::string hardlink;  ///< makes it a hard link to this name
  dev_t rdev = 0;
  time_t mtime = 1700000000;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

inline Entry file(std::string name, std::string data, mode_t perm = 0644) {
  Entry e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}
inline Entry dir(std::string name, mode_t perm = 0755) {
  Entry e;
  e.name = std::move(name);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}
inline Entry symlink(std::string name, std::string to) {
  Entry e;
  e.name = std::move(name);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(to);
  return e;
}
inline Entry hardlink(std::string name, std::string to) {
  Entry e;
  e.name = std::move(name);
  e.hardlink = std::move(to);
  return e;
}

/// An archive of `entries` in `format` (ARCHIVE_FORMAT_*) through `filter`
/// (ARCHIVE_FILTER_*), as bytes.
inline std::string buildArchive(const std::vector<Entry>& entries, int format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED,
                                int filter = ARCHIVE_FILTER_NONE) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format(a, format);
  archive_write_add_filter(a, filter);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  // cpio has no link names: a hard link is an entry with the same inode
  // number (and nlink counting them all), the data with one of them.
  const bool cpio = (format & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_CPIO;
  std::map<std::string, int> ino_of, links;
  for (size_t i = 0; i < entries.size(); ++i) ino_of[entries[i].name] = static_cast<int>(i) + 1;
  for (const Entry& e : entries)
    if (!e.hardlink.empty()) links[e.hardlink] += 1;
  int ino = 1;
  for (const Entry& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.name.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, e.perm);
    archive_entry_set_mtime(ae, e.mtime, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_ino(ae, ino++);
    archive_entry_set_nlink(ae, 1 + (links.count(e.name) ? links[e.name] : 0));
    if (!e.symlink.empty()) archive_entry_set_symlink(ae, e.symlink.c_str());
    if (!e.hardlink.empty() && !cpio) archive_entry_set_hardlink(ae, e.hardlink.c_str());
    if (!e.hardlink.empty() && cpio && ino_of.count(e.hardlink)) {
      archive_entry_set_ino(ae, ino_of[e.hardlink]);
      archive_entry_set_nlink(ae, 1 + links[e.hardlink]);
    }
    if (e.type == AE_IFCHR || e.type == AE_IFBLK) archive_entry_set_rdev(ae, e.rdev);
    for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    archive_entry_set_size(ae, e.type == AE_IFREG ? static_cast<la_int64_t>(e.data.size()) : 0);
    archive_write_header(a, ae);
    if (!e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

/// Gives `data` in chunks of `chunk` bytes, then the end.
inline ChunkSource chunked(std::string data, size_t chunk = 1000) {
  auto state = std::make_shared<std::pair<std::string, size_t>>(std::move(data), 0);
  return [state, chunk]() -> Result<std::string> {
    auto& [d, pos] = *state;
    std::string out = d.substr(pos, chunk);
    pos += out.size();
    return out;
  };
}

}  // namespace xenctl::image::testing
