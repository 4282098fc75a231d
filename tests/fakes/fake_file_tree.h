// FakeFileTree: a core::FileTree in memory, for the customization code's
// tests. It keeps real state (type, mode, owner, content, link target per
// entry) and resolves paths by the port's rules, so a test that passes on it
// means the same on customize::Ext4FileTree.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "lib/core/file_tree.h"

namespace xenctl::fakes {

class FakeFileTree final : public core::FileTree {
 public:
  /// An empty tree: only "/" (0755 root:root), writable.
  FakeFileTree() : state_(std::make_shared<State>()), writable_(true) {}

  // --- core::FileTree ---------------------------------------------------

  Result<std::string> readFile(std::string_view path) override {
    XENCTL_RETURN_IF_ERROR(usable(path, false));
    XENCTL_ASSIGN_OR_RETURN(Node * n, walk(path, /*follow_last=*/true, nullptr));
    if (n->type != core::FileType::kRegular)
      return absl::FailedPreconditionError(absl::StrCat(av(path), " is not a regular file"));
    return n->data;
  }

  Status writeFile(std::string_view path, std::string_view content, const core::FileAttrs& attrs) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Slot s, slot(path));
    if (s.node && s.node->type == core::FileType::kDirectory)
      return absl::FailedPreconditionError(absl::StrCat(av(path), " is a directory"));
    XENCTL_RETURN_IF_ERROR(room(path, s.node ? sizeOf(*s.node) : 0, content.size()));
    auto n = std::make_unique<Node>(core::FileType::kRegular, attrs);
    n->data = std::string(content);
    s.parent->children[s.name] = std::move(n);
    ++state_->mutations;
    return absl::OkStatus();
  }

  Status appendFile(std::string_view path, std::string_view content, const core::FileAttrs& attrs) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Slot s, slot(path));
    if (!s.node) return writeFile(path, content, attrs);
    if (s.node->type != core::FileType::kRegular)
      return absl::FailedPreconditionError(absl::StrCat(av(path), " is not a regular file"));
    XENCTL_RETURN_IF_ERROR(room(path, 0, content.size()));
    s.node->data.append(content);
    ++state_->mutations;
    return absl::OkStatus();
  }

  Status mkdirs(std::string_view path, const core::FileAttrs& attrs) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Node * n, walk(path, /*follow_last=*/true, &attrs));
    if (n->type != core::FileType::kDirectory)
      return absl::FailedPreconditionError(absl::StrCat(av(path), " exists and is not a directory"));
    return absl::OkStatus();
  }

  Status symlink(std::string_view path, std::string_view target) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Slot s, slot(path));
    if (s.node && s.node->type == core::FileType::kDirectory)
      return absl::FailedPreconditionError(absl::StrCat(av(path), " is a directory"));
    auto n = std::make_unique<Node>(core::FileType::kSymlink, core::FileAttrs{0777, 0, 0});
    n->data = std::string(target);
    s.parent->children[s.name] = std::move(n);
    ++state_->mutations;
    return absl::OkStatus();
  }

  Status remove(std::string_view path, bool recursive) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Slot s, slot(path));
    if (!s.node) return absl::NotFoundError(absl::StrCat(av(path), " does not exist"));
    if (s.node->type == core::FileType::kDirectory && !s.node->children.empty() && !recursive)
      return absl::FailedPreconditionError(absl::StrCat(av(path), " is a directory that is not empty"));
    s.parent->children.erase(s.name);
    ++state_->mutations;
    return absl::OkStatus();
  }

  Status chmod(std::string_view path, uint32_t mode) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Node * n, walk(path, /*follow_last=*/true, nullptr));
    n->mode = mode & 07777;
    ++state_->mutations;
    return absl::OkStatus();
  }

  Status chown(std::string_view path, uint32_t uid, uint32_t gid) override {
    XENCTL_RETURN_IF_ERROR(usable(path, true));
    XENCTL_ASSIGN_OR_RETURN(Node * n, walk(path, /*follow_last=*/true, nullptr));
    n->uid = uid;
    n->gid = gid;
    ++state_->mutations;
    return absl::OkStatus();
  }

  Result<core::FileStat> stat(std::string_view path) override {
    XENCTL_RETURN_IF_ERROR(usable(path, false));
    XENCTL_ASSIGN_OR_RETURN(Node * n, walk(path, /*follow_last=*/false, nullptr));
    return statOf(*n);
  }

  Result<std::vector<std::string>> list(std::string_view dir) override {
    XENCTL_RETURN_IF_ERROR(usable(dir, false));
    XENCTL_ASSIGN_OR_RETURN(Node * n, walk(dir, /*follow_last=*/true, nullptr));
    if (n->type != core::FileType::kDirectory)
      return absl::FailedPreconditionError(absl::StrCat(av(dir), " is not a directory"));
    std::vector<std::string> names;
    for (const auto& [name, child] : n->children) names.push_back(name);
    return names;
  }

  Status close() override {
    if (closed_) return absl::FailedPreconditionError("the file tree is already closed");
    closed_ = true;
    ++state_->closes;
    return absl::OkStatus();
  }

  // --- for tests ----------------------------------------------------------

  /// Another handle on the same files (what an opener hands out), so a test
  /// keeps inspecting after the code under test closed its handle.
  std::unique_ptr<FakeFileTree> reopen(bool writable) const {
    return std::unique_ptr<FakeFileTree>(new FakeFileTree(state_, writable));
  }
  /// A deep copy with its own files: one clone of a golden image.
  std::unique_ptr<FakeFileTree> clone() const {
    auto s = std::make_shared<State>();
    s->root = copy(state_->root);
    s->capacity = state_->capacity;
    return std::unique_ptr<FakeFileTree>(new FakeFileTree(std::move(s), true));
  }
  /// A core::FileTreeOpener answering every path with a handle on this tree;
  /// each (path, writable) opened is appended to `*opened` when given.
  core::FileTreeOpener opener(std::vector<std::string>* opened = nullptr) const {
    auto state = state_;
    return [state, opened](const std::string& device, bool writable) -> Result<std::unique_ptr<core::FileTree>> {
      if (opened) opened->push_back(absl::StrCat(device, writable ? " rw" : " ro"));
      return std::unique_ptr<core::FileTree>(new FakeFileTree(state, writable));
    };
  }

  /// Seeding: creates the entry and any missing parents (0755 root); throws
  /// on a path the port would refuse, so a broken fixture fails loudly.
  void addFile(std::string_view path, std::string_view content, uint32_t mode = 0644, uint32_t uid = 0,
               uint32_t gid = 0) {
    seedParents(path);
    check(writeFile(path, content, {mode, uid, gid}));
  }
  void addDir(std::string_view path, uint32_t mode = 0755, uint32_t uid = 0, uint32_t gid = 0) {
    seedParents(path);
    check(mkdirs(path, {mode, uid, gid}));
  }
  void addSymlink(std::string_view path, std::string_view target) {
    seedParents(path);
    check(symlink(path, target));
  }
  /// A device node or fifo (kOther): readFile and writeFile refuse it.
  void addOther(std::string_view path) {
    seedParents(path);
    auto s = slot(path);
    if (!s.ok()) throw std::runtime_error(std::string(s.status().message()));
    s->parent->children[s->name] = std::make_unique<Node>(core::FileType::kOther, core::FileAttrs{0600, 0, 0});
  }
  /// Writes that would take the content of all files past `bytes` fail
  /// RESOURCE_EXHAUSTED (a full file system).
  void setCapacity(uint64_t bytes) { state_->capacity = bytes; }

  /// Every entry below "/" (not followed) as "type mode uid:gid data", keyed
  /// by path: equal dumps mean equal trees.
  std::map<std::string, std::string> dump() const {
    std::map<std::string, std::string> out;
    dumpInto(state_->root, "", out);
    return out;
  }
  /// Changes made through any handle (a mkdirs that finds everything
  /// there makes none), and close() calls.
  int mutations() const { return state_->mutations; }
  int closes() const { return state_->closes; }
  bool closed() const { return closed_; }

 private:
  struct Node {
    Node(core::FileType t, const core::FileAttrs& a) : type(t), mode(a.mode & 07777), uid(a.uid), gid(a.gid) {}
    core::FileType type;
    uint32_t mode, uid, gid;
    std::string data;  ///< content, or the link target
    std::map<std::string, std::unique_ptr<Node>> children;
  };
  struct State {
    std::unique_ptr<Node> root =
        std::make_unique<Node>(core::FileType::kDirectory, core::FileAttrs{0755, 0, 0});
    uint64_t capacity = std::numeric_limits<uint64_t>::max();
    int mutations = 0;
    int closes = 0;
  };
  /// Where the last component of a path lives: its parent directory (after
  /// following everything before it) and the entry, null when missing.
  struct Slot {
    Node* parent;
    std::string name;
    Node* node;
  };
  static constexpr int kMaxLinks = 40;  // Linux's limit (ELOOP)

  FakeFileTree(std::shared_ptr<State> s, bool writable) : state_(std::move(s)), writable_(writable) {}

  Status usable(std::string_view path, bool change) const {
    if (closed_) return absl::FailedPreconditionError(absl::StrCat(av(path), ": the file tree is closed"));
    if (path.empty() || path[0] != '/' || path.find('\0') != std::string_view::npos)
      return absl::InvalidArgumentError(absl::StrCat("'", av(path), "' is not an absolute path"));
    if (change && !writable_)
      return absl::FailedPreconditionError(absl::StrCat(av(path), ": the file tree was opened read-only"));
    return absl::OkStatus();
  }

  static std::vector<std::string> parts(std::string_view path) {
    return absl::StrSplit(absl::string_view(path.data(), path.size()), '/', absl::SkipEmpty());
  }

  /// Resolves `path` from the root: ".." never climbs above it, symlinks on
  /// the way restart from the root (absolute) or the current directory
  /// (relative); the last component is followed only when `follow_last`.
  /// With `mkdir`, missing components are created as directories.
  Result<Node*> walk(std::string_view path, bool follow_last, const core::FileAttrs* mkdir) const {
    std::vector<Node*> stack{state_->root.get()};
    auto p = parts(path);
    std::deque<std::string> pending(p.begin(), p.end());
    int links = 0;
    while (!pending.empty()) {
      std::string c = std::move(pending.front());
      pending.pop_front();
      if (c.empty() || c == ".") continue;
      Node* cur = stack.back();
      if (cur->type != core::FileType::kDirectory)
        return absl::FailedPreconditionError(absl::StrCat(av(path), ": a component is not a directory"));
      if (c == "..") {
        if (stack.size() > 1) stack.pop_back();
        continue;
      }
      auto it = cur->children.find(c);
      if (it == cur->children.end()) {
        if (!mkdir) return absl::NotFoundError(absl::StrCat(av(path), " does not exist"));
        auto n = std::make_unique<Node>(core::FileType::kDirectory, *mkdir);
        Node* raw = n.get();
        cur->children[c] = std::move(n);
        ++state_->mutations;
        stack.push_back(raw);
        continue;
      }
      Node* n = it->second.get();
      if (n->type == core::FileType::kSymlink && (!pending.empty() || follow_last)) {
        if (++links > kMaxLinks)
          return absl::FailedPreconditionError(absl::StrCat(av(path), ": too many levels of symbolic links"));
        if (!n->data.empty() && n->data[0] == '/') stack.resize(1);
        auto t = parts(n->data);
        pending.insert(pending.begin(), t.begin(), t.end());
        continue;
      }
      stack.push_back(n);
    }
    return stack.back();
  }

  Result<Slot> slot(std::string_view path) const {
    auto p = parts(path);
    if (p.empty() || p.back() == "." || p.back() == "..")
      return absl::InvalidArgumentError(absl::StrCat("'", av(path), "' names no entry to change"));
    std::string parent_path = "/";
    for (size_t i = 0; i + 1 < p.size(); ++i) absl::StrAppend(&parent_path, p[i], "/");
    auto parent = walk(parent_path, /*follow_last=*/true, nullptr);
    if (!parent.ok()) {
      if (absl::IsNotFound(parent.status()))
        return absl::NotFoundError(absl::StrCat(av(path), ": the parent directory does not exist"));
      return parent.status();
    }
    if ((*parent)->type != core::FileType::kDirectory)
      return absl::FailedPreconditionError(absl::StrCat(av(path), ": the parent is not a directory"));
    auto it = (*parent)->children.find(p.back());
    return Slot{*parent, p.back(), it == (*parent)->children.end() ? nullptr : it->second.get()};
  }

  static uint64_t sizeOf(const Node& n) {
    uint64_t total = n.type == core::FileType::kRegular ? n.data.size() : 0;
    for (const auto& [name, child] : n.children) total += sizeOf(*child);
    return total;
  }
  Status room(std::string_view path, uint64_t freed, uint64_t added) const {
    uint64_t used = sizeOf(*state_->root) - freed;
    if (state_->capacity != std::numeric_limits<uint64_t>::max() && used + added > state_->capacity)
      return absl::ResourceExhaustedError(absl::StrCat("writing ", av(path), ": no space left on the file system"));
    return absl::OkStatus();
  }

  static core::FileStat statOf(const Node& n) {
    core::FileStat st;
    st.type = n.type;
    st.mode = n.mode;
    st.uid = n.uid;
    st.gid = n.gid;
    st.size = n.data.size();
    if (n.type == core::FileType::kSymlink) st.link_target = n.data;
    return st;
  }

  static std::unique_ptr<Node> copy(const std::unique_ptr<Node>& n) {
    auto c = std::make_unique<Node>(n->type, core::FileAttrs{n->mode, n->uid, n->gid});
    c->data = n->data;
    for (const auto& [name, child] : n->children) c->children[name] = copy(child);
    return c;
  }

  static void dumpInto(const std::unique_ptr<Node>& n, const std::string& path, std::map<std::string, std::string>& out) {
    static constexpr const char* kTypes[] = {"file", "dir", "link", "other"};
    out[path.empty() ? "/" : path] = absl::StrFormat("%s %04o %u:%u %s", kTypes[static_cast<int>(n->type)],
                                                     n->mode, n->uid, n->gid, n->data);
    for (const auto& [name, child] : n->children) dumpInto(child, path + "/" + name, out);
  }

  void seedParents(std::string_view path) {
    auto p = parts(path);
    std::string dir;
    for (size_t i = 0; i + 1 < p.size(); ++i) absl::StrAppend(&dir, "/", p[i]);
    if (!dir.empty()) check(mkdirs(dir, {0755, 0, 0}));
  }
  static void check(const Status& s) {
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  }

  std::shared_ptr<State> state_;
  bool writable_;
  bool closed_ = false;
};

}  // namespace xenctl::fakes
