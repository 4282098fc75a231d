#include "lib/customize/container_executor.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
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
  if (auto* i = std::get_if<ImageStmt>(&b)) {
    if (i->target.kind == Location::Kind::kVolume && !(ports.create_volume && ports.remove_volume))
      return "cannot make a managed volume in this run; give an image file's path";
    if (i->target.kind != Location::Kind::kVolume && !ports.make_fs)
      return "cannot format an image file in this run (no mkfs.ext4)";
  }
  if (std::holds_alternative<PopulateStmt>(b) && ports.work_dir.empty())
    return "cannot unpack an archive in this run (no private work directory)";
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
  std::string tree;  // its tree's key: a host path, or the target a [image] of this run makes
  std::vector<Write> writes;
  std::optional<Location> diff;  // where the tree's diff so far goes
  std::string diff_text;
  std::optional<Location> fork;  // where the tree goes as an archive, after the step
  std::string staged;            // [populate]: the private directory its archive is unpacked in
};

// A file system an [image] of this run makes, keyed by its target.
struct NewTree {
  const ImageStmt* image = nullptr;
  std::string path;    // where it is once made: the temporary image file, or the volume's path
  std::string target;  // an image file: the path it is renamed to when the run succeeds
  bool made = false;
};

// Reads the regular file `rel` (absolute inside the tree) of a directory
// an archive was unpacked in, resolving it as if `dir` were "/" (openat2
// RESOLVE_IN_ROOT): a symlink in the archive never leads out. nullopt when
// there is no regular file there.
Result<std::optional<std::string>> readStaged(const std::string& dir, const std::string& rel) {
  int root = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return errnoStatus(errno, absl::StrCat("opening ", dir));
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string name = rel.substr(rel.find_first_not_of('/') == std::string::npos ? rel.size() : rel.find_first_not_of('/'));
  int fd = static_cast<int>(::syscall(SYS_openat2, root, name.empty() ? "." : name.c_str(), &how, sizeof how));
  int err = errno;
  ::close(root);
  if (fd < 0) {
    if (err == ENOENT || err == ENOTDIR) return std::optional<std::string>();
    return errnoStatus(err, absl::StrCat("reading ", rel, " of the unpacked archive"));
  }
  struct stat st;
  std::optional<std::string> out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    std::string content;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        ::close(fd);
        return errnoStatus(err, absl::StrCat("reading ", rel, " of the unpacked archive"));
      }
      content.append(buf, static_cast<size_t>(n));
    }
    out = std::move(content);
  }
  ::close(fd);
  return out;
}

// Copies the unpacked tree at `dir` into `tree`: directories, files and
// symlinks with their modes and owners; other entries are left out.
Status copyInto(const std::string& dir, core::FileTree& tree) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string host = it->path().string();
    const std::string rel = host.substr(dir.size());
    struct stat st;
    if (::lstat(host.c_str(), &st) != 0) return errnoStatus(errno, absl::StrCat("reading ", rel, " unpacked"));
    const core::FileAttrs attrs{static_cast<uint32_t>(st.st_mode & 07777), st.st_uid, st.st_gid};
    if (S_ISDIR(st.st_mode)) {
      XENCTL_RETURN_IF_ERROR(tree.mkdirs(rel, attrs));
      XENCTL_RETURN_IF_ERROR(tree.chmod(rel, attrs.mode));
      XENCTL_RETURN_IF_ERROR(tree.chown(rel, attrs.uid, attrs.gid));
    } else if (S_ISREG(st.st_mode)) {
      XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> content, readStaged(dir, rel));
      if (!content) return absl::InternalError(absl::StrCat(rel, " changed while being copied"));
      XENCTL_RETURN_IF_ERROR(tree.writeFile(rel, *content, attrs));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(host.c_str(), target.data(), target.size());
      if (n < 0) return errnoStatus(errno, absl::StrCat("reading the link ", rel, " unpacked"));
      target.resize(static_cast<size_t>(n));
      XENCTL_RETURN_IF_ERROR(tree.symlink(rel, target));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("walking the unpacked archive: ", ec.message()));
  return absl::OkStatus();
}

class Run {
 public:
  Run(std::string_view file_name, const ContainerPorts& ports, const ContainerRunOptions& options)
      : file_name_(file_name), ports_(ports), options_(options) {
    if (options_.fetch.max_bytes == 0) options_.fetch.max_bytes = options_.max_fetch_bytes;
  }

  ~Run() {
    trees_.clear();
    std::error_code ec;
    for (const std::string& dir : staging_dirs_) std::filesystem::remove_all(dir, ec);
    for (const std::string& image : scratch_images_) ::unlink(image.c_str());
  }

  Status run(const ContainerFile& file) {
    Status st = passes(file);
    if (!st.ok()) undoNewTrees();
    return st;
  }

 private:
  Status passes(const ContainerFile& file) {
    std::vector<Step> steps;
    for (const Statement& s : file.statements) {  // pass 1
      auto step = check(s);
      if (!step.ok()) return at(file_name_, s, step.status());
      steps.push_back(std::move(*step));
    }
    XENCTL_RETURN_IF_ERROR(checkArchivesLeave(steps));
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
    trees_.clear();
    // The image files this run made take their names last, never over a file.
    for (auto& [key, nt] : new_trees_) {
      if (!result.ok() || nt.target.empty() || !nt.made) continue;
      if (::renameat2(AT_FDCWD, nt.path.c_str(), AT_FDCWD, nt.target.c_str(), RENAME_NOREPLACE) != 0)
        result = errnoStatus(errno, absl::StrCat("[image] ", nt.target, ": naming the new image"));
      else
        nt.made = false;  // in place: nothing to undo
    }
    return result;
  }

  // A failed run removes the file systems it made.
  void undoNewTrees() {
    trees_.clear();
    for (auto& [key, nt] : new_trees_) {
      if (!nt.made) continue;
      if (!nt.target.empty()) ::unlink(nt.path.c_str());
      else (void)ports_.remove_volume(nt.image->target.volume);
    }
  }

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
        return absl::InvalidArgumentError(absl::StrCat("'", l.text, "' is a remote archive, not a file system"));
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

  // The key of the tree `l` names: the target itself when an [image] of
  // this run makes it, else its host path.
  Result<std::string> treeKey(const Location& l) {
    if (isArchive(l)) return archiveTree(l);
    if (l.kind == Location::Kind::kVolume) {
      if (new_trees_.count(l.text)) return l.text;
      return hostPath(l);
    }
    XENCTL_ASSIGN_OR_RETURN(std::string path, hostPath(l));
    return path;
  }

  // An archive named as a tree: a remote URI, or a file whose name says
  // it is one (etc.cpio.gz); other paths and file:// URIs are file systems.
  static bool isArchive(const Location& l) {
    if (l.kind == Location::Kind::kVolume || l.kind == Location::Kind::kRoot) return false;
    if (l.kind == Location::Kind::kUri && l.text.rfind("file://", 0) != 0) return true;
    for (std::string_view suffix : {".cpio", ".cpio.gz", ".cpio.xz", ".cpio.zst", ".tar", ".tar.gz", ".tgz",
                                    ".tar.xz", ".txz", ".tar.zst", ".tzst", ".tar.bz2"})
      if (std::string_view(l.text).ends_with(suffix)) return true;
    return false;
  }

  // Pass 1 for an archive named as a tree: fetched once per run (under the
  // fetcher's policy), unpacked into a private directory and copied into a
  // scratch ext4 image in work_dir, which the run then edits like any
  // tree. The archive itself is never written: its changes leave through
  // diff and fork (checkArchivesLeave). Its key is the scratch image.
  Result<std::string> archiveTree(const Location& l) {
    const std::string uri = fetchUri(l);
    if (auto it = archives_.find(uri); it != archives_.end()) return it->second;
    if (ports_.work_dir.empty() || !ports_.make_fs)
      return absl::UnimplementedError(absl::StrCat(
          "editing the archive at '", l.text, "' needs a private work directory and mkfs.ext4, which this run lacks"));
    XENCTL_ASSIGN_OR_RETURN(const std::string* bytes, fetched(l));
    XENCTL_ASSIGN_OR_RETURN(std::string dir, unpack(*bytes, l.text));
    // Room for every entry (a block and an inode each at mkfs.ext4's 16 KiB
    // per inode), its data and the journal; sparse, so a generous size costs nothing.
    uint64_t entries = 0, bytes_in = 0;
    std::error_code ec;
    for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      ++entries;
      if (it->is_regular_file(ec)) bytes_in += it->file_size(ec);
    }
    const uint64_t size = ((bytes_in + bytes_in / 4 + entries * (16 << 10) + (uint64_t{64} << 20)) + 4095) / 4096 * 4096;
    std::string image = absl::StrCat(ports_.work_dir, "/archive-XXXXXX");
    int fd = ::mkostemp(image.data(), O_CLOEXEC);
    if (fd < 0) return errnoStatus(errno, absl::StrCat("making a scratch image in ", ports_.work_dir));
    scratch_images_.push_back(image);
    const int rc = ::ftruncate(fd, static_cast<off_t>(size));
    const int err = errno;
    ::close(fd);
    if (rc != 0) return errnoStatus(err, absl::StrCat("sizing the scratch image for ", l.text));
    XENCTL_RETURN_IF_ERROR(ports_.make_fs(image, "archive"));
    XENCTL_ASSIGN_OR_RETURN(auto tree, ports_.open_tree(image, true));
    Status copied = copyInto(dir, *tree);
    Status closed = tree->close();
    if (!copied.ok()) return Status(copied.code(), absl::StrCat(l.text, ": ", copied.message()));
    XENCTL_RETURN_IF_ERROR(closed);
    archives_[uri] = image;
    archive_names_[image] = l.text;
    return image;
  }

  // Unpacks `bytes` into a new private directory under work_dir.
  Result<std::string> unpack(const std::string& bytes, const std::string& what) {
    std::string dir = absl::StrCat(ports_.work_dir, "/unpack-XXXXXX");
    if (::mkdtemp(dir.data()) == nullptr)
      return errnoStatus(errno, absl::StrCat("making a private directory in ", ports_.work_dir));
    staging_dirs_.push_back(dir);
    std::string_view left = bytes;
    image::ExtractPolicy policy = options_.extract;
    policy.stop = options_.fetch.stop;
    auto x = image::extractArchive(
        [&]() -> Result<std::string> {
          std::string chunk(left.substr(0, size_t{1} << 20));
          left.remove_prefix(chunk.size());
          return chunk;
        },
        dir, policy);
    if (!x.ok()) return Status(x.status().code(), absl::StrCat(what, ": ", x.status().message()));
    return dir;
  }

  // An archive's changes leave the run only through a diff or a fork: one
  // edited with neither is refused before anything is written.
  Status checkArchivesLeave(const std::vector<Step>& steps) {
    for (const auto& [image, name] : archive_names_) {
      const Statement* first = nullptr;
      bool leaves = false;
      for (const Step& st : steps) {
        if (st.tree != image) continue;
        if (!first) first = st.statement;
        const StatementBody& b = st.statement->body;
        if (auto* r = std::get_if<ReplaceStmt>(&b)) leaves = leaves || r->outputs.diff || r->outputs.fork;
        if (auto* c = std::get_if<CopyStmt>(&b)) leaves = leaves || c->outputs.diff || c->outputs.fork;
        if (auto* p = std::get_if<PatchStmt>(&b)) leaves = leaves || p->out;
      }
      if (first && !leaves)
        return at(file_name_, *first,
                  absl::FailedPreconditionError(absl::StrCat(
                      "changes the archive at '", name, "', which is never written back; give 'fork URI' (the "
                      "changed tree as a new archive) or 'diff URI' on a statement for it, or a [patch] OUT-URI")));
    }
    return absl::OkStatus();
  }

  // Pass 1 of [image]: the target is free; it becomes a new tree.
  Status checkImage(const ImageStmt& i, Step& step) {
    if (i.target.kind == Location::Kind::kVolume) {
      auto existing = hostPath(i.target);
      if (existing.ok() || new_trees_.count(i.target.text))
        return absl::AlreadyExistsError(absl::StrCat(i.target.text, " already exists; delete it first (`vm-volume delete ",
                                                     i.target.volume.name, " --pool ", i.target.volume.pool, "`)"));
      if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
      step.tree = i.target.text;
    } else {
      XENCTL_ASSIGN_OR_RETURN(step.tree, hostPath(i.target));
      struct stat st;
      if (new_trees_.count(step.tree) || ::lstat(step.tree.c_str(), &st) == 0)
        return absl::AlreadyExistsError(
            absl::StrCat(step.tree, " already exists; an [image] never writes over a file: delete it first"));
      const std::string parent = step.tree.substr(0, step.tree.rfind('/'));
      if (::stat(parent.empty() ? "/" : parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return absl::NotFoundError(absl::StrCat("the directory of ", step.tree, " does not exist"));
    }
    new_trees_[step.tree] = NewTree{&i, "", i.target.kind == Location::Kind::kVolume ? "" : step.tree, false};
    return absl::OkStatus();
  }

  // Pass 1 of [create]: the directory, packed now; stored in pass 3.
  Status checkCreate(const CreateStmt& c) {
    struct stat st;
    if (::stat(c.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return absl::NotFoundError(absl::StrCat(c.dir, " is not a directory on this host"));
    const std::string uri = fetchUri(c.uri);
    std::string archive;
    auto packed = image::packDirectory(
        c.dir, image::exportFormatFor(uri),
        [&](std::string_view chunk) -> Status {
          if (archive.size() + chunk.size() > options_.max_fetch_bytes)
            return absl::ResourceExhaustedError(absl::StrCat(
                "the archive of ", c.dir, " passes ", options_.max_fetch_bytes,
                " bytes, what a run holds; store a larger tree with `vm-image export`"));
          archive.append(chunk);
          return absl::OkStatus();
        },
        options_.fetch.stop);
    if (!packed.ok()) return packed.status();
    cache_[uri] = std::move(archive);
    return absl::OkStatus();
  }

  // Pass 1: is it built, where is its tree, what must be fetched.
  Result<Step> check(const Statement& s) {
    if (std::string why = notBuilt(s, ports_); !why.empty()) return absl::UnimplementedError(why);
    Step step;
    step.statement = &s;
    if (auto* c = std::get_if<CreateStmt>(&s.body)) {
      XENCTL_RETURN_IF_ERROR(checkCreate(*c));
      return step;
    }
    if (auto* i = std::get_if<ImageStmt>(&s.body)) {
      XENCTL_RETURN_IF_ERROR(checkImage(*i, step));
      return step;
    }
    std::optional<Location> target = statementTarget(s);
    XENCTL_ASSIGN_OR_RETURN(step.tree, treeKey(*target));
    if (auto* p = std::get_if<PopulateStmt>(&s.body)) XENCTL_RETURN_IF_ERROR(fetched(p->archive).status());
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

  Result<core::FileTree*> tree(const std::string& key, bool writable) {
    auto it = trees_.find(key);
    if (it != trees_.end()) return it->second.get();
    std::string path = key;
    if (auto nt = new_trees_.find(key); nt != new_trees_.end()) {
      if (!nt->second.made) return absl::InternalError(absl::StrCat(key, " is opened before it is made"));
      path = nt->second.path;
    }
    auto t = ports_.open_tree(path, writable);
    if (!t.ok()) return t.status();
    return trees_.emplace(key, std::move(*t)).first->second.get();
  }

  // What `path` holds once the planned writes before this one are made.
  // The latest of: a planned write, a [populate] that holds the file, the
  // tree (empty when an [image] of this run makes it).
  Result<std::optional<std::string>> current(const std::string& tree_path, const std::string& path) {
    auto& overlay = overlays_[tree_path];
    auto written = overlay.find(path);
    for (auto it = populated_[tree_path].rbegin(); it != populated_[tree_path].rend(); ++it) {
      if (written != overlay.end() && written_at_[tree_path][path] > it->first) break;
      XENCTL_ASSIGN_OR_RETURN(std::optional<std::string> staged, readStaged(it->second, path));
      if (staged) return staged;
    }
    if (written != overlay.end()) return written->second;
    std::optional<std::string> now;
    if (!new_trees_.count(tree_path)) {
      XENCTL_ASSIGN_OR_RETURN(core::FileTree * t, tree(tree_path, false));
      auto content = t->readFile(path);
      if (content.ok()) now = std::move(*content);
      else if (content.status().code() != absl::StatusCode::kNotFound) return content.status();
    }
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
    written_at_[step.tree][path] = ++sequence_;
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
    } else if (auto* pop = std::get_if<PopulateStmt>(&s.body)) {
      XENCTL_ASSIGN_OR_RETURN(std::string dir, unpack(cache_.at(fetchUri(pop->archive)), pop->archive.text));
      step.staged = dir;
      populated_[step.tree].emplace_back(++sequence_, dir);
    } else if (std::holds_alternative<CreateStmt>(s.body) || std::holds_alternative<ImageStmt>(s.body)) {
      // made in pass 3
    } else if (!new_trees_.count(step.tree)) {
      XENCTL_RETURN_IF_ERROR(tree(step.tree, false).status());  // typed: made in pass 3
    }
    if (step.diff) step.diff_text = treeDiff(step.tree);
    return absl::OkStatus();
  }

  Status store(const std::string& uri, std::string_view text, std::string_view what) {
    std::string_view rest = text;
    core::FetchOptions fo = options_.fetch;
    fo.max_bytes = 0;  // a bound on what is fetched, not on what is stored
    auto r = ports_.fetcher->put(
        uri,
        [&](char* buf, size_t max) -> Result<size_t> {
          size_t n = std::min(max, rest.size());
          std::copy_n(rest.data(), n, buf);
          rest.remove_prefix(n);
          return n;
        },
        fo);
    if (!r.ok()) return Status(r.status().code(), absl::StrCat("storing ", av(what), " at ", uri, ": ", r.status().message()));
    return absl::OkStatus();
  }

  // Pass 3 of [image]: the file system, made where it can be removed.
  Status makeImage(const ImageStmt& i, const std::string& key) {
    NewTree& nt = new_trees_.at(key);
    if (i.target.kind == Location::Kind::kVolume) {
      XENCTL_ASSIGN_OR_RETURN(nt.path, ports_.create_volume(i.target.volume, i.size_bytes, i.label));
      nt.made = true;
      return absl::OkStatus();
    }
    const size_t slash = key.rfind('/');
    std::string tmp = absl::StrCat(key.substr(0, slash + 1), ".", key.substr(slash + 1), ".xenctl-XXXXXX");
    int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600: an OS root's set-id files stay private
    if (fd < 0) return errnoStatus(errno, absl::StrCat("making ", key));
    nt.path = tmp;
    nt.made = true;
    const int rc = ::ftruncate(fd, static_cast<off_t>(i.size_bytes));
    const int err = errno;
    ::close(fd);
    if (rc != 0) return errnoStatus(err, absl::StrCat("sizing ", key));
    Status st = ports_.make_fs(tmp, i.label);
    if (!st.ok()) return Status(st.code(), absl::StrCat("formatting ", key, ": ", st.message()));
    return absl::OkStatus();
  }

  // Pass 3.
  Status write(const Step& step) {
    const StatementBody& b = step.statement->body;
    if (auto* c = std::get_if<CreateStmt>(&b)) {
      const std::string uri = fetchUri(c->uri);
      return store(uri, cache_.at(uri), "the archive");
    }
    if (auto* i = std::get_if<ImageStmt>(&b)) return makeImage(*i, step.tree);
    XENCTL_ASSIGN_OR_RETURN(core::FileTree * t, tree(step.tree, true));
    if (std::holds_alternative<PopulateStmt>(b)) return copyInto(step.staged, *t);
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
    if (step.diff) XENCTL_RETURN_IF_ERROR(store(fetchUri(*step.diff), step.diff_text, "the diff"));
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
  std::map<std::string, NewTree> new_trees_;  // by tree key
  // tree -> the [populate] directories planned into it, each with its place in the run's order
  std::map<std::string, std::vector<std::pair<uint64_t, std::string>>> populated_;
  std::map<std::string, std::map<std::string, uint64_t>> written_at_;  // tree -> path -> the planned write's place
  uint64_t sequence_ = 0;
  std::vector<std::string> staging_dirs_;  // removed when the run ends
  std::vector<std::string> scratch_images_;  // archives' scratch images, removed when the run ends
  std::map<std::string, std::string> archives_;       // archive URI -> its scratch image
  std::map<std::string, std::string> archive_names_;  // scratch image -> the archive as written
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
