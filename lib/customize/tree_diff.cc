#include "lib/customize/tree_diff.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/customize/container_executor.h"

namespace xenctl::customize {
namespace {

std::string childPath(const std::string& dir, const std::string& name) {
  return dir == "/" ? absl::StrCat("/", name) : absl::StrCat(dir, "/", name);
}

Status inTree(const Status& st, std::string_view which) {
  return st.ok() ? st : Status(st.code(), absl::StrCat("reading the ", av(which), ": ", st.message()));
}

// Walks both trees at once. `base` or `tree` may be missing for a path
// (an added or removed subtree): then only the other is read.
class Walk {
 public:
  Walk(core::FileTree& base, core::FileTree& tree) : base_(base), tree_(tree) {}

  Status entry(const std::string& path, const std::optional<core::FileStat>& b,
               const std::optional<core::FileStat>& t) {
    if (b && !t) {
      out_.push_back({path, TreeChange::Kind::kRemoved, false, false, false, false, false, *b, {}});
    } else if (!b && t) {
      out_.push_back({path, TreeChange::Kind::kAdded, false, false, false, false, false, {}, *t});
    } else {
      TreeChange c{path, TreeChange::Kind::kChanged, false, false, false, false, false, *b, *t};
      c.type = b->type != t->type;
      if (!c.type) {
        c.mode = b->type != core::FileType::kSymlink && b->mode != t->mode;
        c.owner = b->uid != t->uid || b->gid != t->gid;
        c.link_target = b->type == core::FileType::kSymlink && b->link_target != t->link_target;
        if (b->type == core::FileType::kRegular) {
          if (b->size != t->size) {
            c.content = true;
          } else if (b->size > 0) {
            XENCTL_ASSIGN_OR_RETURN(std::string bc, readIn(base_, path, "base"));
            XENCTL_ASSIGN_OR_RETURN(std::string tc, readIn(tree_, path, "tree"));
            c.content = bc != tc;
          }
        }
      }
      if (c.type || c.content || c.mode || c.owner || c.link_target) out_.push_back(std::move(c));
    }
    const bool b_dir = b && b->type == core::FileType::kDirectory;
    const bool t_dir = t && t->type == core::FileType::kDirectory;
    if (!b_dir && !t_dir) return absl::OkStatus();
    std::vector<std::string> bn, tn;
    if (b_dir) {
      XENCTL_ASSIGN_OR_RETURN(bn, listIn(base_, path, "base"));
    }
    if (t_dir) {
      XENCTL_ASSIGN_OR_RETURN(tn, listIn(tree_, path, "tree"));
    }
    // Both lists are sorted: merge them.
    size_t i = 0, j = 0;
    while (i < bn.size() || j < tn.size()) {
      std::optional<core::FileStat> bs, ts;
      std::string name;
      if (j == tn.size() || (i < bn.size() && bn[i] < tn[j])) {
        name = bn[i++];
        XENCTL_ASSIGN_OR_RETURN(bs, statIn(base_, childPath(path, name), "base"));
      } else if (i == bn.size() || tn[j] < bn[i]) {
        name = tn[j++];
        XENCTL_ASSIGN_OR_RETURN(ts, statIn(tree_, childPath(path, name), "tree"));
      } else {
        name = bn[i++];
        ++j;
        XENCTL_ASSIGN_OR_RETURN(bs, statIn(base_, childPath(path, name), "base"));
        XENCTL_ASSIGN_OR_RETURN(ts, statIn(tree_, childPath(path, name), "tree"));
      }
      XENCTL_RETURN_IF_ERROR(entry(childPath(path, name), bs, ts));
    }
    return absl::OkStatus();
  }

  std::vector<TreeChange> take() { return std::move(out_); }

  static Result<std::string> readIn(core::FileTree& t, const std::string& path, std::string_view which) {
    auto r = t.readFile(path);
    if (!r.ok()) return inTree(r.status(), which);
    return r;
  }

 private:
  static Result<std::vector<std::string>> listIn(core::FileTree& t, const std::string& path, std::string_view which) {
    auto r = t.list(path);
    if (!r.ok()) return inTree(r.status(), which);
    return r;
  }
  static Result<std::optional<core::FileStat>> statIn(core::FileTree& t, const std::string& path,
                                                      std::string_view which) {
    auto r = t.stat(path);
    if (!r.ok()) return inTree(r.status(), which);
    return std::optional<core::FileStat>(*std::move(r));
  }

  core::FileTree& base_;
  core::FileTree& tree_;
  std::vector<TreeChange> out_;
};

std::string_view typeName(core::FileType t) {
  switch (t) {
    case core::FileType::kRegular: return "file";
    case core::FileType::kDirectory: return "directory";
    case core::FileType::kSymlink: return "symlink";
    case core::FileType::kOther: return "special file";
  }
  return "entry";
}

// "symlink -> /usr/share/zoneinfo/UTC", "file 0644 0:0".
std::string describe(const core::FileStat& st) {
  if (st.type == core::FileType::kSymlink)
    return absl::StrFormat("symlink -> %s %u:%u", st.link_target, st.uid, st.gid);
  return absl::StrFormat("%s %04o %u:%u", av(typeName(st.type)), st.mode, st.uid, st.gid);
}

}  // namespace

std::string_view toString(TreeChange::Kind k) {
  switch (k) {
    case TreeChange::Kind::kAdded: return "added";
    case TreeChange::Kind::kRemoved: return "removed";
    case TreeChange::Kind::kChanged: return "changed";
  }
  return "changed";
}

std::string changedFields(const TreeChange& c) {
  std::vector<absl::string_view> f;
  if (c.type) f.push_back("type");
  if (c.content) f.push_back("content");
  if (c.mode) f.push_back("mode");
  if (c.owner) f.push_back("owner");
  if (c.link_target) f.push_back("link target");
  return absl::StrJoin(f, ", ");
}

Result<std::vector<TreeChange>> diffTrees(core::FileTree& base, core::FileTree& tree) {
  auto b = base.stat("/");
  if (!b.ok()) return inTree(b.status(), "base");
  auto t = tree.stat("/");
  if (!t.ok()) return inTree(t.status(), "tree");
  Walk walk(base, tree);
  XENCTL_RETURN_IF_ERROR(walk.entry("/", *b, *t));
  return walk.take();
}

bool isBinary(std::string_view content) { return content.find('\0') != std::string_view::npos; }


Result<std::string> writePatch(core::FileTree& base, core::FileTree& tree, const std::vector<TreeChange>& changes) {
  using Kind = TreeChange::Kind;
  std::string out;
  auto note = [&out](const std::string& path, std::string_view what) {
    absl::StrAppend(&out, "xenctl: ", path, ": ", av(what), " (not in this patch)\n");
  };
  for (const TreeChange& c : changes) {
    const bool was_file = c.kind != Kind::kAdded && c.before.type == core::FileType::kRegular;
    const bool is_file = c.kind != Kind::kRemoved && c.after.type == core::FileType::kRegular;
    // What the patch carries: the content of regular files. A file replaced
    // by another type is carried as its removal; a file that replaces
    // another type as its creation.
    std::optional<std::string> before, after;
    if (was_file && (c.kind == Kind::kRemoved || c.type || c.content)) {
      XENCTL_ASSIGN_OR_RETURN(before, Walk::readIn(base, c.path, "base"));
    }
    if (is_file && (c.kind == Kind::kAdded || c.type || c.content)) {
      XENCTL_ASSIGN_OR_RETURN(after, Walk::readIn(tree, c.path, "tree"));
    }
    if (before || after) {
      if ((before && isBinary(*before)) || (after && isBinary(*after))) {
        std::string rel = c.path.substr(1);
        absl::StrAppend(&out, "Binary files ", before ? "a/" + rel : "/dev/null", " and ",
                        after ? "b/" + rel : "/dev/null", " differ\n");
      } else {
        out += unifiedDiff(c.path, before, after);
      }
    }
    // What it cannot carry, named.
    switch (c.kind) {
      case Kind::kAdded:
        if (!is_file) note(c.path, absl::StrCat("added ", describe(c.after)));
        else if (c.after.mode != 0644 || c.after.uid != 0 || c.after.gid != 0)
          note(c.path, absl::StrCat("added as ", describe(c.after)));
        break;
      case Kind::kRemoved:
        if (!was_file) note(c.path, absl::StrCat("removed ", describe(c.before)));
        break;
      case Kind::kChanged:
        if (c.type) {
          if (!was_file || !is_file) note(c.path, absl::StrCat(describe(c.before), " became ", describe(c.after)));
        } else if (c.mode || c.owner || c.link_target) {
          note(c.path, absl::StrCat(describe(c.before), " became ", describe(c.after)));
        }
        break;
    }
  }
  return out;
}

}  // namespace xenctl::customize
