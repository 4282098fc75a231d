#include "lib/customize/container_executor.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/customize/tree_archive.h"
#include "lib/image/archive_writer.h"

namespace xenctl::customize {
namespace {

// The lines of `text`, each with its "\n" (the last may have none).
std::vector<std::string_view> linesOf(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t start = 0; start < text.size();) {
    size_t e = text.find('\n', start);
    size_t stop = e == std::string_view::npos ? text.size() : e + 1;
    out.push_back(text.substr(start, stop - start));
    start = stop;
  }
  return out;
}

// "a/etc/motd\t2024-01-01 ..." -> "a/etc/motd".
std::string_view diffName(std::string_view header) {
  size_t tab = header.find('\t');
  if (tab != std::string_view::npos) header = header.substr(0, tab);
  while (!header.empty() && (header.back() == '\n' || header.back() == '\r' || header.back() == ' '))
    header.remove_suffix(1);
  return header;
}

// "-12,3" or "+4" -> (12, 3) / (4, 1).
bool hunkRange(std::string_view s, size_t& start, size_t& count) {
  size_t comma = s.find(',');
  count = 1;
  if (comma != std::string_view::npos && !absl::SimpleAtoi(av(s.substr(comma + 1)), &count)) return false;
  return absl::SimpleAtoi(av(s.substr(0, comma)), &start);
}

std::string where(std::string_view file_name, const Statement& s) {
  return absl::StrCat(av(file_name), ":", s.pos.line, ":", s.pos.column, ": [", s.keyword, "]");
}

// The same status with the statement's place in front of its message.
Status at(std::string_view file_name, const Statement& s, const Status& status) {
  return Status(status.code(), absl::StrCat(where(file_name, s), " ", status.message()));
}

bool isTyped(const StatementBody& b) {
  return std::holds_alternative<HostnameStmt>(b) || std::holds_alternative<FileStmt>(b) ||
         std::holds_alternative<SshKeyStmt>(b) || std::holds_alternative<UserStmt>(b) ||
         std::holds_alternative<NetworkStmt>(b) || std::holds_alternative<UserDataStmt>(b) ||
         std::holds_alternative<ResetIdentityStmt>(b);
}

// Why this build does not run `s`, or "" when it does.
std::string notBuilt(const Statement& s, const ContainerPorts& ports) {
  const StatementBody& b = s.body;
  if (std::holds_alternative<CreateStmt>(b) || std::holds_alternative<ImageStmt>(b) ||
      std::holds_alternative<PopulateStmt>(b))
    return "is not built yet in this xenctl";
  if (isTyped(b) && !ports.customize) return "typed customizations are not available in this build";
  return "";
}

// The typed customization a typed statement stands for.
core::Customizations customizationsOf(const StatementBody& b, const ContainerRunOptions& o) {
  core::Customizations c;
  c.reset_identity = false;
  if (auto* s = std::get_if<HostnameStmt>(&b)) c.hostname = s->hostname;
  if (auto* s = std::get_if<FileStmt>(&b)) c.files.push_back(s->file);
  if (auto* s = std::get_if<SshKeyStmt>(&b)) c.ssh_keys.push_back(s->keys);
  if (auto* s = std::get_if<UserStmt>(&b)) c.users.push_back(s->user);
  if (auto* s = std::get_if<NetworkStmt>(&b)) c.networks.push_back(s->nic);
  if (auto* s = std::get_if<UserDataStmt>(&b)) {
    c.cloud_init_user_data = s->user_data;
    c.instance_id = o.instance_id;
  }
  if (std::holds_alternative<ResetIdentityStmt>(b)) c.reset_identity = true;
  return c;
}

// The URI a file to read is fetched from.
std::string fetchUri(const Location& l) {
  return l.kind == Location::Kind::kPath ? absl::StrCat("file://", l.text) : l.text;
}

// One change that pass 3 makes.
struct Write {
  std::string path;
  std::optional<std::string> content;  // nullopt: remove
};

struct Step {
  const Statement* statement = nullptr;
  std::string tree;  // host path of its tree
  std::vector<Write> writes;
  std::optional<Location> diff;  // where the tree's diff so far goes
  std::string diff_text;
  std::optional<Location> fork;  // where the tree goes as an archive, after the step
};

class Run {
 public:
  Run(std::string_view file_name, const ContainerPorts& ports, const ContainerRunOptions& options)
      : file_name_(file_name), ports_(ports), options_(options) {
    if (options_.fetch.max_bytes == 0) options_.fetch.max_bytes = options_.max_fetch_bytes;
  }

  Status run(const ContainerFile& file) {
    std::vector<Step> steps;
    for (const Statement& s : file.statements) {  // pass 1
      auto step = check(s);
      if (!step.ok()) return at(file_name_, s, step.status());
      steps.push_back(std::move(*step));
    }
    Status planned = absl::OkStatus();
    for (size_t i = 0; i < steps.size() && planned.ok(); ++i)  // pass 2
      if (Status st = plan(steps[i]); !st.ok()) planned = at(file_name_, *steps[i].statement, st);
    for (auto& [path, tree] : trees_) (void)tree->close();  // read-only: nothing to lose
    trees_.clear();
    if (!planned.ok() || options_.dry_run) return planned;
    Status result = absl::OkStatus();  // pass 3
    for (size_t i = 0; i < steps.size() && result.ok(); ++i) {
      if (options_.progress) options_.progress(i, steps.size(), *steps[i].statement);
      if (Status st = write(steps[i]); !st.ok()) result = at(file_name_, *steps[i].statement, st);
    }
    for (auto& [path, tree] : trees_) {
      Status st = tree->close();
      if (result.ok() && !st.ok()) result = Status(st.code(), absl::StrCat("closing '", path, "': ", st.message()));
    }
    return result;
  }

 private:
  Result<std::string> hostPath(const Location& l) const {
    switch (l.kind) {
      case Location::Kind::kPath: return l.text;
      case Location::Kind::kVolume:
        if (!ports_.volume_path)
          return absl::FailedPreconditionError(
              absl::StrCat("'", l.text, "' names a managed volume, which this run cannot resolve"));
        return ports_.volume_path(l.volume);
      case Location::Kind::kRoot:
        if (ports_.root_path.empty())
          return absl::FailedPreconditionError(
              "'root' names the root of a domain being created, and this run creates none; give an image file's "
              "path or vol:POOL/NAME");
        return ports_.root_path;
      case Location::Kind::kUri:
        if (l.text.rfind("file:///", 0) == 0) return l.text.substr(7);
        return absl::UnimplementedError(
            absl::StrCat("editing the archive at '", l.text,
                         "' (fetch, unpack, change, store) is not built yet in this xenctl; give an image file's "
                         "path or vol:POOL/NAME as the archive"));
    }
    return absl::InternalError("unknown location kind");
  }

  Result<const std::string*> fetched(const Location& l) {
    std::string uri = fetchUri(l);
    auto it = cache_.find(uri);
    if (it != cache_.end()) return &it->second;
    if (ports_.fetcher == nullptr) return absl::FailedPreconditionError("this run has no fetcher");
    std::string body;
    auto r = ports_.fetcher->fetch(
        uri,
        [&](std::string_view chunk) {
          body.append(chunk);
          return absl::OkStatus();
        },
        options_.fetch);
    if (!r.ok()) return r.status();
    return &cache_.emplace(uri, std::move(body)).first->second;
  }

  // Pass 1: is it built, where is its tree, what must be fetched.
  Result<Step> check(const Statement& s) {
    if (std::string why = notBuilt(s, ports_); !why.empty()) return absl::UnimplementedError(why);
    Step step;
    step.statement = &s;
    std::optional<Location> target = statementTarget(s);
    XENCTL_ASSIGN_OR_RETURN(step.tree, hostPath(*target));
    if (auto* c = std::get_if<CopyStmt>(&s.body)) XENCTL_RETURN_IF_ERROR(fetched(c->source).status());
    if (auto* p = std::get_if<PatchStmt>(&s.body)) {
      XENCTL_ASSIGN_OR_RETURN(const std::string* diff, fetched(p->patch));
      auto parsed = parseUnifiedDiff(*diff, p->strip);
      if (!parsed.ok())
        return Status(parsed.status().code(), absl::StrCat(p->patch.text, ": ", parsed.status().message()));
      patches_[&s] = std::move(*parsed);
    }
    return step;
  }

  Result<core::FileTree*> tree(const std::string& path, bool writable) {
    auto it = trees_.find(path);
    if (it != trees_.end()) return it->second.get();
    auto t = ports_.open_tree(path, writable);
    if (!t.ok()) return t.status();
    return trees_.emplace(path, std::move(*t)).first->second.get();
  }

  // What `path` holds once the planned writes before this one are made.
  Result<std::optional<std::string>> current(const std::string& tree_path, const std::string& path) {
    auto& overlay = overlays_[tree_path];
    if (auto it = overlay.find(path); it != overlay.end()) return it->second;
    XENCTL_ASSIGN_OR_RETURN(core::FileTree * t, tree(tree_path, false));
    auto content = t->readFile(path);
    std::optional<std::string> now;
    if (content.ok()) now = std::move(*content);
    else if (content.status().code() != absl::StatusCode::kNotFound) return content.status();
    originals_[tree_path].emplace(path, now);
    return now;
  }

  // The diff of the tree's planned changes so far against the run's start.
  std::string treeDiff(const std::string& tree_path) {
    std::string out;
    for (const auto& [path, now] : overlays_[tree_path]) out += unifiedDiff(path, originals_[tree_path][path], now);
    return out;
  }

  void planWrite(Step& step, std::string path, std::optional<std::string> content) {
    overlays_[step.tree][path] = content;
    step.writes.push_back({std::move(path), std::move(content)});
  }

  // Pass 2: the writes of replace, copy and patch, worked out in memory.
  Status plan(Step& step) {
    const Statement& s = *step.statement;
    if (auto* r = std::get_if<ReplaceStmt>(&s.body)) {
      XENCTL_RETURN_IF_ERROR(current(step.tree, r->path).status());  // the tree opens; the original is kept
      planWrite(step, r->path, r->text);
      step.diff = r->outputs.diff;
      step.fork = r->outputs.fork;
    } else if (auto* c = std::get_if<CopyStmt>(&s.body)) {
      XENCTL_RETURN_IF_ERROR(current(step.tree, c->path).status());
      planWrite(step, c->path, cache_.at(fetchUri(c->source)));
      step.diff = c->outputs.diff;
      step.fork = c->outputs.fork;
    } else if (auto* p = std::get_if<PatchStmt>(&s.body)) {
      step.fork = p->out;
      for (const FilePatch& fp : patches_.at(&s)) {
        XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> now, current(step.tree, fp.path));
        if (fp.create && now && !now->empty())
          return absl::FailedPreconditionError(
              absl::StrCat(p->patch.text, ": the patch creates ", fp.path, ", which is already there"));
        if (!fp.create && !now)
          return absl::NotFoundError(absl::StrCat(p->patch.text, ": the patch changes ", fp.path,
                                                  ", which is not in ", p->target.text));
        auto patched = applyFilePatch(now.value_or(""), fp);
        if (!patched.ok())
          return Status(patched.status().code(), absl::StrCat(p->patch.text, ": ", patched.status().message()));
        if (fp.remove) planWrite(step, fp.path, std::nullopt);
        else planWrite(step, fp.path, std::move(*patched));
      }
    } else {
      XENCTL_RETURN_IF_ERROR(tree(step.tree, false).status());  // typed: made in pass 3
    }
    if (step.diff) step.diff_text = treeDiff(step.tree);
    return absl::OkStatus();
  }

  Status storeDiff(const Step& step) {
    std::string_view rest = step.diff_text;
    auto r = ports_.fetcher->put(
        fetchUri(*step.diff),
        [&](char* buf, size_t max) -> Result<size_t> {
          size_t n = std::min(max, rest.size());
          std::copy_n(rest.data(), n, buf);
          rest.remove_prefix(n);
          return n;
        },
        options_.fetch);
    if (!r.ok()) return Status(r.status().code(), absl::StrCat("storing the diff: ", r.status().message()));
    return absl::OkStatus();
  }

  // Pass 3.
  Status write(const Step& step) {
    XENCTL_ASSIGN_OR_RETURN(core::FileTree * t, tree(step.tree, true));
    if (isTyped(step.statement->body)) return ports_.customize(*t, customizationsOf(step.statement->body, options_));
    for (const Write& w : step.writes) {
      if (!w.content) {
        XENCTL_RETURN_IF_ERROR(t->remove(w.path, false));
        continue;
      }
      core::FileAttrs attrs;  // a new file: 0644 root:root; an existing one keeps its own
      auto st = t->stat(w.path);
      if (st.ok() && st->type == core::FileType::kRegular) attrs = {st->mode, st->uid, st->gid};
      if (!st.ok() && st.status().code() == absl::StatusCode::kNotFound) {
        std::string parent = w.path.substr(0, w.path.rfind('/'));
        if (!parent.empty()) XENCTL_RETURN_IF_ERROR(t->mkdirs(parent, {0755, 0, 0}));
      }
      XENCTL_RETURN_IF_ERROR(t->writeFile(w.path, *w.content, attrs));
    }
    if (step.diff) XENCTL_RETURN_IF_ERROR(storeDiff(step));
    if (step.fork) return storeFork(step, *t);
    return absl::OkStatus();
  }

  // The tree as it is now, every write before it made, as a new archive.
  Status storeFork(const Step& step, core::FileTree& t) {
    const std::string uri = fetchUri(*step.fork);
    core::FetchOptions fo = options_.fetch;
    fo.max_bytes = 0;  // a bound on what is fetched, not on what is stored
    auto r = image::exportArchive(
        *ports_.fetcher,
        [&](const core::ByteSink& sink) { return packTree(t, image::exportFormatFor(uri), sink, fo.stop); }, uri,
        fo);
    if (!r.ok())
      return Status(r.status().code(), absl::StrCat("storing the fork at ", uri, ": ", r.status().message()));
    return absl::OkStatus();
  }

  std::string_view file_name_;
  const ContainerPorts& ports_;
  ContainerRunOptions options_;
  std::map<std::string, std::string> cache_;  // URI -> body, fetched once per run
  std::map<std::string, std::unique_ptr<core::FileTree>> trees_;
  std::map<std::string, std::map<std::string, std::optional<std::string>>> overlays_;
  std::map<const Statement*, std::vector<FilePatch>> patches_;
  // tree -> path -> what it held before the run (nullopt: missing)
  std::map<std::string, std::map<std::string, std::optional<std::string>>> originals_;
};

// One line of an edit script: ' ' kept, '-' removed, '+' added.
struct Edit {
  char op;
  std::string_view line;
};

// The edits that turn `a` into `b`: common ends trimmed, then a longest
// common subsequence over the middle (one replace-all hunk when too big).
std::vector<Edit> editScript(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre]) ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre && a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) ++suf;
  std::vector<Edit> out;
  for (size_t i = 0; i < pre; ++i) out.push_back({' ', a[i]});
  size_t n = a.size() - pre - suf, m = b.size() - pre - suf;
  if (n * m > kMaxDiffCells || n == 0 || m == 0) {
    for (size_t i = 0; i < n; ++i) out.push_back({'-', a[pre + i]});
    for (size_t j = 0; j < m; ++j) out.push_back({'+', b[pre + j]});
  } else {
    // lcs[i][j]: the LCS length of a[pre+i..] and b[pre+j..].
    std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
    auto L = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;)
      for (size_t j = m; j-- > 0;)
        L(i, j) = a[pre + i] == b[pre + j] ? L(i + 1, j + 1) + 1 : std::max(L(i + 1, j), L(i, j + 1));
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[pre + i] == b[pre + j]) {
        out.push_back({' ', a[pre + i]});
        ++i, ++j;
      } else if (i < n && (j == m || L(i + 1, j) >= L(i, j + 1))) {
        out.push_back({'-', a[pre + i++]});  // removals before additions, as diff -u
      } else {
        out.push_back({'+', b[pre + j++]});
      }
    }
  }
  for (size_t i = a.size() - suf; i < a.size(); ++i) out.push_back({' ', a[i]});
  return out;
}

void appendDiffLine(std::string& out, char op, std::string_view line) {
  out += op;
  out.append(line);
  if (line.empty() || line.back() != '\n') out += "\n\\ No newline at end of file\n";
}

}  // namespace

Status runContainer(const ContainerFile& file, std::string_view file_name, const ContainerPorts& ports,
                    const ContainerRunOptions& options) {
  return Run(file_name, ports, options).run(file);
}

std::string unifiedDiff(std::string_view path, const std::optional<std::string>& before,
                        const std::optional<std::string>& after) {
  if (before == after) return "";
  static const std::string kNone;
  std::vector<std::string_view> a = linesOf(before ? *before : kNone), b = linesOf(after ? *after : kNone);
  std::vector<Edit> edits = editScript(a, b);
  std::string rel(path.starts_with("/") ? path.substr(1) : path);
  std::string out = absl::StrCat("--- ", before ? "a/" + rel : "/dev/null", "\n+++ ",
                                 after ? "b/" + rel : "/dev/null", "\n");
  constexpr size_t kContext = 3;
  for (size_t k = 0; k < edits.size();) {
    if (edits[k].op == ' ') {
      ++k;
      continue;
    }
    // A hunk: from kContext lines before this change to kContext lines after
    // the last change that is at most 2*kContext kept lines from the next.
    size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    for (size_t kept = 0; end < edits.size() && kept <= 2 * kContext; ++end)
      kept = edits[end].op == ' ' ? kept + 1 : 0;
    while (end > k && edits[end - 1].op == ' ') --end;
    end = std::min(edits.size(), end + kContext);
    size_t old_line = 1, new_line = 1;
    for (size_t e = 0; e < start; ++e) {
      if (edits[e].op != '+') ++old_line;
      if (edits[e].op != '-') ++new_line;
    }
    size_t old_count = 0, new_count = 0;
    std::string body;
    for (size_t e = start; e < end; ++e) {
      if (edits[e].op != '+') ++old_count;
      if (edits[e].op != '-') ++new_count;
      appendDiffLine(body, edits[e].op, edits[e].line);
    }
    absl::StrAppend(&out, "@@ -", old_count == 0 ? old_line - 1 : old_line, ",", old_count, " +",
                    new_count == 0 ? new_line - 1 : new_line, ",", new_count, " @@\n", body);
    k = end;
  }
  return out;
}

Result<std::vector<FilePatch>> parseUnifiedDiff(std::string_view diff, int strip) {
  std::vector<std::string_view> lines = linesOf(diff);
  auto bad = [&](size_t i, std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("line ", i + 1, " of the diff: ", av(why)));
  };
  std::vector<FilePatch> out;
  for (size_t i = 0; i < lines.size();) {
    if (!(lines[i].starts_with("--- ") && i + 1 < lines.size() && lines[i + 1].starts_with("+++ "))) {
      ++i;  // "diff --git", "index ...", commentary
      continue;
    }
    std::string_view old_name = diffName(lines[i].substr(4)), new_name = diffName(lines[i + 1].substr(4));
    FilePatch fp;
    fp.create = old_name == "/dev/null";
    fp.remove = new_name == "/dev/null";
    if (fp.create && fp.remove) return bad(i, "both names are /dev/null");
    std::string_view name = fp.remove ? old_name : new_name;
    size_t pos = 0;
    for (int k = 0; k < strip; ++k) {
      size_t slash = name.find('/', pos);
      if (slash == std::string_view::npos)
        return bad(i, absl::StrCat("'", av(name), "' has fewer than ", strip, " leading components to strip"));
      pos = slash + 1;
    }
    std::string_view rest = name.substr(pos);
    if (rest.empty()) return bad(i, absl::StrCat("'", av(name), "' names no file once stripped"));
    fp.path = rest.front() == '/' ? std::string(rest) : absl::StrCat("/", av(rest));
    i += 2;
    while (i < lines.size() && lines[i].starts_with("@@ ")) {
      FilePatch::Hunk h;
      std::string_view header = diffName(lines[i]);
      h.header = std::string(header);
      size_t end = header.find(" @@", 3);
      size_t space = header.find(' ', 3);
      if (end == std::string_view::npos || space >= end || header[3] != '-' || header[space + 1] != '+' ||
          !hunkRange(header.substr(4, space - 4), h.old_start, h.old_count) ||
          !hunkRange(header.substr(space + 2, end - space - 2), h.new_start, h.new_count))
        return bad(i, absl::StrCat("'", av(header), "' is not a hunk header (@@ -A,B +C,D @@)"));
      ++i;
      size_t old_left = h.old_count, new_left = h.new_count;
      while ((old_left > 0 || new_left > 0) && i < lines.size()) {
        std::string_view l = lines[i];
        if (l.starts_with("\\")) {  // "\ No newline at end of file"
          if (!h.lines.empty() && h.lines.back().ends_with("\n")) h.lines.back().pop_back();
          ++i;
          continue;
        }
        char kind = (l.empty() || l == "\n") ? ' ' : l[0];
        if (kind == ' ' && old_left > 0 && new_left > 0) --old_left, --new_left;
        else if (kind == '-' && old_left > 0) --old_left;
        else if (kind == '+' && new_left > 0) --new_left;
        else return bad(i, absl::StrCat("hunk '", av(header), "' has more or other lines than its header counts"));
        h.lines.push_back(l == "\n" ? std::string(" \n") : std::string(l));
        ++i;
      }
      if (old_left > 0 || new_left > 0)
        return bad(i == 0 ? 0 : i - 1, absl::StrCat("hunk '", av(header), "' ends before its header's count"));
      if (i < lines.size() && lines[i].starts_with("\\")) {
        if (!h.lines.empty() && h.lines.back().ends_with("\n")) h.lines.back().pop_back();
        ++i;
      }
      fp.hunks.push_back(std::move(h));
    }
    if (fp.hunks.empty() && !fp.create && !fp.remove) return bad(i - 1, "a file header with no hunk after it");
    out.push_back(std::move(fp));
  }
  if (out.empty()) return absl::InvalidArgumentError("the diff holds no '--- ' / '+++ ' file header: not a unified diff");
  return out;
}

Result<std::string> applyFilePatch(std::string_view content, const FilePatch& patch) {
  std::vector<std::string_view> orig = linesOf(content);
  std::string out;
  size_t cursor = 0;     // lines of `orig` consumed
  long offset = 0;       // where the last hunk applied against where it said
  for (size_t k = 0; k < patch.hunks.size(); ++k) {
    const FilePatch::Hunk& h = patch.hunks[k];
    std::vector<std::string_view> old_lines, new_lines;
    for (const std::string& l : h.lines) {
      std::string_view body = std::string_view(l).substr(1);
      if (l[0] != '+') old_lines.push_back(body);
      if (l[0] != '-') new_lines.push_back(body);
    }
    auto matches = [&](size_t at) {
      if (at + old_lines.size() > orig.size()) return false;
      for (size_t j = 0; j < old_lines.size(); ++j)
        if (orig[at + j] != old_lines[j]) return false;
      return true;
    };
    long want = static_cast<long>(h.old_count == 0 ? h.old_start : h.old_start - 1) + offset;
    std::optional<size_t> found;
    for (long d = 0; !found && d <= static_cast<long>(orig.size()); ++d) {
      for (long at : {want - d, want + d})
        if (at >= static_cast<long>(cursor) && at <= static_cast<long>(orig.size()) && matches(at)) {
          found = static_cast<size_t>(at);
          break;
        }
    }
    if (!found)
      return absl::FailedPreconditionError(absl::StrCat("hunk ", k + 1, " of ", patch.path, " (", h.header,
                                                        ") does not apply: its context and removed lines are not in "
                                                        "the file (after line ",
                                                        cursor, ")"));
    for (size_t j = cursor; j < *found; ++j) out.append(orig[j]);
    for (std::string_view l : new_lines) out.append(l);
    cursor = *found + old_lines.size();
    offset = static_cast<long>(*found) - static_cast<long>(h.old_count == 0 ? h.old_start : h.old_start - 1);
  }
  for (size_t j = cursor; j < orig.size(); ++j) out.append(orig[j]);
  if (patch.remove && !out.empty())
    return absl::FailedPreconditionError(
        absl::StrCat("the patch removes ", patch.path, " but the file holds more than the patch takes out"));
  return out;
}

}  // namespace xenctl::customize
