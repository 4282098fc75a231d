// Tree diff: what a domain's root holds that its golden image does not (the
// paper's §4 "diff" of a customized tree). Two file systems are walked side
// by side through the FileTree port, both opened read-only by the caller;
// nothing is mounted and nothing from either runs on the host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/file_tree.h"
#include "lib/core/status.h"

namespace xenctl::customize {

/// One entry that differs. Paths are absolute inside the trees.
struct TreeChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  std::string path;
  Kind kind = Kind::kChanged;
  /// What differs (kChanged only; several may be set). `type`: the entry is
  /// of another type (a file became a symlink ...); the other fields are then
  /// not compared. `content`: a regular file's bytes. `mode`: the permission
  /// bits (not compared for symlinks, whose bits mean nothing). `owner`: the
  /// uid or gid. `link_target`: a symlink's target.
  bool type = false, content = false, mode = false, owner = false, link_target = false;
  core::FileStat before;  ///< in the base; kRemoved and kChanged
  core::FileStat after;   ///< in the other tree; kAdded and kChanged
};

std::string_view toString(TreeChange::Kind k);
/// "content, mode" — what a kChanged entry differs in, in that order:
/// type, content, mode, owner, link target.
std::string changedFields(const TreeChange& c);

/// Every entry that differs between `base` and `tree`, in path order
/// (a directory before what is in it). Symlinks are compared as links
/// (their targets), never followed; only real directories are descended
/// into, so the walk never leaves either tree. An added or removed
/// directory is listed with everything below it. Device nodes, fifos and
/// sockets (FileType::kOther) are compared by mode and owner only: the port
/// does not show device numbers. Equal entries are not listed. Errors are
/// the trees' own, with the path and which tree ("reading the base: ...").
Result<std::vector<TreeChange>> diffTrees(core::FileTree& base, core::FileTree& tree);

/// True for content that a unified diff cannot carry: it holds a NUL byte
/// (as git and diff(1) decide).
bool isBinary(std::string_view content);

/// The changes as a unified diff (`--- a/PATH` / `+++ b/PATH`, /dev/null for
/// an added or removed file, 3 lines of context) that the container
/// language's `[patch TARGET URI 1 ]` applies to another copy of the base:
/// the content of every added, removed or changed regular text file. What a
/// unified diff cannot carry is named on a line of its own between the
/// files, which patch readers skip: "Binary files a/P and b/P differ" (as
/// diff(1) writes it), and "xenctl: PATH: ... (not in this patch)" for
/// modes, owners, symlinks, directories and other types. Files are read
/// again from both trees (read-only).
Result<std::string> writePatch(core::FileTree& base, core::FileTree& tree, const std::vector<TreeChange>& changes);

}  // namespace xenctl::customize
