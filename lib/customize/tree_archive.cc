#include "lib/customize/tree_archive.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace xenctl::customize {

Result<image::PackStats> packTree(core::FileTree& tree, image::ExportFormat format, const core::ByteSink& sink,
                                  std::stop_token stop) {
  XENCTL_ASSIGN_OR_RETURN(std::unique_ptr<image::EntryWriter> out, image::EntryWriter::open(format, sink));
  XENCTL_ASSIGN_OR_RETURN(core::FileStat root, tree.stat("/"));
  XENCTL_RETURN_IF_ERROR(out->directory(".", root.mode, root.uid, root.gid));
  // Directories still to list, depth first; an explicit stack, so a deep
  // tree cannot exhaust the call stack.
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    if (stop.stop_requested()) return absl::CancelledError("packing the tree: cancelled");
    std::string dir = std::move(pending.back());
    pending.pop_back();
    XENCTL_ASSIGN_OR_RETURN(std::vector<std::string> names, tree.list(dir.empty() ? "/" : dir));
    std::vector<std::string> subdirs;
    for (const std::string& name : names) {
      if (stop.stop_requested()) return absl::CancelledError("packing the tree: cancelled");
      const std::string path = absl::StrCat(dir, "/", name);
      const std::string entry = absl::StrCat(".", path);
      XENCTL_ASSIGN_OR_RETURN(core::FileStat st, tree.stat(path));
      switch (st.type) {
        case core::FileType::kDirectory:
          XENCTL_RETURN_IF_ERROR(out->directory(entry, st.mode, st.uid, st.gid));
          subdirs.push_back(path);
          break;
        case core::FileType::kRegular: {
          XENCTL_ASSIGN_OR_RETURN(std::string content, tree.readFile(path));
          XENCTL_RETURN_IF_ERROR(out->file(entry, content, st.mode, st.uid, st.gid));
          break;
        }
        case core::FileType::kSymlink:
          XENCTL_RETURN_IF_ERROR(out->symlink(entry, st.link_target, st.uid, st.gid));
          break;
        case core::FileType::kOther:
          break;  // no FileTree call reads a device's numbers
      }
    }
    // Pushed in reverse, so the sorted first is listed first.
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) pending.push_back(std::move(*it));
  }
  return out->close();
}

}  // namespace xenctl::customize
