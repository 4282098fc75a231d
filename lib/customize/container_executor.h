// Runs a parsed container file (container_parser.h): its expressions, in
// order, over the file systems they name, edited offline through the
// FileTree port.
//
// A run has three passes so that a file with an error changes nothing:
//  1. check: every statement is one this build runs, every target resolves,
//     every URI is fetched (once per run, then reused);
//  2. plan: replace, copy and patch are worked out in memory over what the
//     trees hold (opened read-only), each hunk checked against its context;
//  3. write: the trees are opened writable once each, the planned writes and
//     the typed customizations are made in statement order, and each tree
//     is closed.
// A failure in passes 1-2 leaves every tree as it was. In pass 3 only a
// typed customization the Customizer refuses, or an I/O error, can stop the
// run part way; the error names the statement. Typed customizations are
// made in pass 3 only, so a [patch] sees the replace/copy/patch changes
// before it but not the typed ones.
//
// The diff option of replace and copy stores (Fetcher::put, after the
// statement's writes) the unified diff of every file the run's replace,
// copy and patch statements have changed in that tree so far, against the
// tree as it was before the run; typed customizations are not in it.
//
// The fork option of replace and copy, and [patch]'s OUT-URI, store the
// tree as it is once the statement's writes are made (every statement
// before it included, typed ones too) as a new archive at the URI
// (packTree: cpio.gz, or tar.zst for a name ending .tar.zst / .tzst),
// after its diff. As the paper (§4.10) says, a fork belongs after the
// tree's last change: a statement after it is not in the archive. Like the
// diff, it is stored in pass 3, so a later statement that fails there
// leaves it stored.
//
// [create DIR URI] packs the host directory DIR in pass 1 (held in memory,
// at most max_fetch_bytes) and stores it at URI in pass 3; a later
// statement that names URI (a [populate]) takes those bytes, unfetched.
//
// [image TARGET SIZE LABEL] makes a new ext4 file system in pass 3: a
// sparse image file (mode 0600), made under a temporary name beside TARGET
// and renamed onto it (never over an existing file) once the whole run has
// succeeded, or a managed volume. TARGET must not exist (ALREADY_EXISTS,
// checked in pass 1). Until pass 3 the new tree reads as empty, so later
// statements plan over it like over any tree. A run that fails after it
// removes what it made.
//
// [populate image TARGET MOUNTPOINT URI] fetches the archive in pass 1,
// unpacks it (lib/image's extractor, under `extract`) into a private
// directory under work_dir in pass 2, and copies that tree into TARGET in
// pass 3 through the FileTree port: directories, files and symlinks with
// their modes and owners (device nodes, fifos and sockets are left out;
// hard links become copies). Nothing is mounted: MOUNTPOINT, the paper's
// loop mount, is only read. Later statements plan over what it copies.
//
// An archive as a statement's tree (the paper's Figure 1: "archive
// http://foo.org/images/etc.cpio.gz"): a remote URI, or a path or file://
// URI whose name ends like an archive (.cpio.gz, .tar.zst, ...; other
// paths are file systems). It is fetched once per run in pass 1, unpacked
// into a private directory under work_dir and copied into a scratch ext4
// image there (make_fs), which the run edits like any tree and removes at
// its end. The archive itself is never written: a run that changes one
// without a diff or fork option (or [patch] OUT-URI) on a statement for it
// is FAILED_PRECONDITION before anything is written.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/customization.h"
#include "lib/core/fetcher.h"
#include "lib/core/file_tree.h"
#include "lib/core/status.h"
#include "lib/core/volume.h"
#include "lib/customize/container_parser.h"
#include "lib/image/archive_extractor.h"

namespace xenctl::customize {

/// What a run needs from outside; all of them ports or plain functions so
/// the executor is tested with fakes.
struct ContainerPorts {
  /// Opens an image file or a block device.
  core::FileTreeOpener open_tree;
  /// Fetches sources and patches (file, http, https, ftp).
  core::Fetcher* fetcher = nullptr;
  /// The host path of a managed volume (the daemon: StorageManager). It must
  /// refuse (FAILED_PRECONDITION) a volume a running domain uses: the
  /// executor edits it offline. Empty: vol:POOL/NAME targets are
  /// FAILED_PRECONDITION.
  std::function<Result<std::string>(const core::VolumeRef&)> volume_path;
  /// The host path of the tree "root" names (a CreateDomain's new root
  /// volume). Empty: "root" is FAILED_PRECONDITION.
  std::string root_path;
  /// Makes typed customizations (the daemon: customize::Customizer::apply).
  /// Empty: the typed expressions are UNIMPLEMENTED.
  std::function<Status(core::FileTree&, const core::Customizations&)> customize;
  /// Formats the (new, sparse) image file at `path` ext4 with `label`
  /// ([image] to a path; the daemon: mkfs.ext4). Empty: UNIMPLEMENTED.
  std::function<Status(const std::string& path, const std::string& label)> make_fs;
  /// Makes the managed volume, formatted ext4 with `label`, and gives its
  /// host path ([image] to vol:POOL/NAME); `remove_volume` deletes it when
  /// the run fails. Empty: UNIMPLEMENTED.
  std::function<Result<std::string>(const core::VolumeRef&, uint64_t size_bytes, const std::string& label)>
      create_volume;
  std::function<Status(const core::VolumeRef&)> remove_volume;
  /// A directory only this process's user can reach, where [populate]
  /// unpacks its archive before copying it into the tree (an OS root's
  /// set-id files stay out of other users' reach). Empty: [populate] is
  /// UNIMPLEMENTED.
  std::string work_dir;
};

struct ContainerRunOptions {
  /// For each fetch; max_bytes is set to `max_fetch_bytes` when it is 0.
  core::FetchOptions fetch;
  uint64_t max_fetch_bytes = uint64_t{64} << 20;
  /// The NoCloud instance-id written by [user-data] (the domain's uuid).
  std::string instance_id;
  /// Passes 1 and 2 only: everything is fetched, opened read-only and
  /// checked (hunks included); nothing is written.
  bool dry_run = false;
  /// Told before each statement of pass 3 runs: its index and the total.
  std::function<void(size_t index, size_t total, const Statement&)> progress;
  /// What a [populate] archive may hold (set-id files, device nodes, limits).
  image::ExtractPolicy extract;
};

/// Runs `file`'s statements. `file_name` names the file in errors
/// ("web1.cfg:12:3: [patch] ..."). Codes: UNIMPLEMENTED for a statement this
/// build does not run; INVALID_ARGUMENT for a patch that does not parse;
/// FAILED_PRECONDITION for a hunk whose context is not in the file (naming
/// the file and the hunk); the ports' own codes (NOT_FOUND for a missing
/// image, source or volume ...), each prefixed with the statement's place.
Status runContainer(const ContainerFile& file, std::string_view file_name, const ContainerPorts& ports,
                    const ContainerRunOptions& options = {});

/// One file's change in a unified diff.
struct FilePatch {
  std::string path;  ///< absolute in the tree, after stripping
  bool create = false;  ///< "--- /dev/null"
  bool remove = false;  ///< "+++ /dev/null"
  struct Hunk {
    size_t old_start = 0, old_count = 0, new_start = 0, new_count = 0;
    std::string header;              ///< "@@ -1,3 +1,4 @@"
    std::vector<std::string> lines;  ///< each with its ' ', '-' or '+' and its "\n" (absent at EOF without one)
  };
  std::vector<Hunk> hunks;
};

/// The unified diff (3 lines of context, "a/" and "b/" names, so
/// [patch]'s default strip 1 takes it back to `path`) that turns `before`
/// into `after`; nullopt is a missing file (/dev/null). "" when they are
/// equal. Lines are matched by a longest common subsequence; past
/// `kMaxDiffCells` line pairs the differing middle is given as one hunk.
std::string unifiedDiff(std::string_view path, const std::optional<std::string>& before,
                        const std::optional<std::string>& after);
inline constexpr size_t kMaxDiffCells = size_t{16} << 20;

/// Parses a unified diff (diff -u, git diff) and strips `strip` leading
/// components from its file names. INVALID_ARGUMENT naming the diff's line
/// for a malformed hunk or a name with too few components.
Result<std::vector<FilePatch>> parseUnifiedDiff(std::string_view diff, int strip);

/// Applies `patch`'s hunks to `content`: each hunk's context and removed
/// lines must be in the file, at its line or shifted by the same offset as
/// the hunks before it (searched both ways). FAILED_PRECONDITION naming the
/// file and the hunk when one is not.
Result<std::string> applyFilePatch(std::string_view content, const FilePatch& patch);

}  // namespace xenctl::customize
