// The container language (DESIGN.md "The container language", paper
// §4.3-4.10): an xl config that may also hold bracketed expressions, each
// closed by "] [end]". parseContainer() reads one file in one pass into typed
// statements, in file order, and the xl config left outside the brackets.
// Pure: no I/O, no fetch; the executor (container_executor.h) runs the result.
//
// Expressions (whitespace, newlines included, is free between words):
//
//   [create DIR URI ][end]                      archive DIR as cpio.gz, store it at URI
//   [image TARGET SIZE LABEL][end]              a sparse ext4 volume/file, labelled
//   [populate image TARGET MOUNTPOINT URI ][end]  fill TARGET from the archive at URI
//   [replace PATH archive TARGET [diff URI] [fork URI] TEXT ] [end]
//   [copy PATH archive TARGET source URI [diff URI] [fork URI] ] [end]
//   [patch TARGET PATCH-URI [STRIP] [OUT-URI] ][end]   STRIP defaults to 1
//
// and the typed customizations of lib/core/customization.h, in the same
// shape (positional words, then options, then inline text where there is one):
//
//   [hostname NAME archive TARGET ][end]
//   [file PATH MODE OWNER archive TARGET TEXT ][end]   MODE octal; OWNER "-" = root
//   [ssh-key USER archive TARGET KEY-LINES ][end]      one OpenSSH public key a line
//   [user NAME HASH GROUPS archive TARGET ][end]       HASH "!" = locked; GROUPS a,b or "-"
//   [network MAC ADDRESS/PREFIX archive TARGET [gateway IP] [dns IP,IP] [vif N] ][end]
//                                                     N: the vif's devid (ifupdown names it enXN/ethN)
//   [user-data archive TARGET TEXT ][end]              a cloud-init NoCloud seed
//   [reset-identity archive TARGET ][end]              new machine-id, SSH host keys, seed
//
// TARGET is an absolute path (an image file or a device), a URI (file,
// http, https, ftp), a managed volume "vol:POOL/NAME", or the word "root":
// the root volume of the domain being created, in a CreateDomain's
// container_text only (checkForNewRoot / checkNoNewRoot below). Options may come in
// any order after the positional words but before the inline text. The
// inline text starts at the first word that is neither; it keeps its
// indentation, loses its leading and trailing blank lines, and ends with a
// newline (an empty text is empty).
//
// An expression starts where an xl statement could: at the start of a line
// (or after ';'), outside an xl list, string or comment. Its text, from '['
// to the "[end]", is left out of the xl config; its newlines are kept, so the
// stripped config's line numbers are the file's own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lib/core/customization.h"
#include "lib/core/status.h"
#include "lib/core/volume.h"

namespace xenctl::customize {

/// Where a statement's file system, archive or file lives.
struct Location {
  /// kRoot: the word "root", the root volume a CreateDomain clones.
  enum class Kind { kPath, kUri, kVolume, kRoot };
  Kind kind = Kind::kPath;
  std::string text;      ///< as written: "/var/images/etc", "http://h/etc.cpio.gz", "vol:thin/web1", "root"
  core::VolumeRef volume;  ///< kVolume only
  bool operator==(const Location&) const = default;
};

/// 1-based line and column (in bytes) of a statement's '['.
struct SourcePos {
  int line = 0;
  int column = 0;
};

struct CreateStmt {
  std::string dir;  ///< absolute host directory
  Location uri;     ///< a URI: where the archive is stored
};
struct ImageStmt {
  Location target;
  uint64_t size_bytes = 0;
  std::string label;
};
struct PopulateStmt {
  Location target;
  std::string mountpoint;  ///< absolute; where the paper mounted it (kept for its syntax)
  Location archive;        ///< a URI or a path
};
/// What replace and copy share: the tree they edit and where its changes go.
struct TreeOutputs {
  std::optional<Location> diff;  ///< write the changes as a unified diff here
  std::optional<Location> fork;  ///< write the modified tree as a new archive here
};
struct ReplaceStmt {
  std::string path;  ///< absolute inside the tree
  Location archive;
  std::string text;
  TreeOutputs outputs;
};
struct CopyStmt {
  std::string path;
  Location archive;
  Location source;  ///< the file copied over `path`
  TreeOutputs outputs;
};
struct PatchStmt {
  Location target;
  Location patch;  ///< a unified diff
  int strip = 1;   ///< leading path components dropped from the diff's names (patch -pN)
  std::optional<Location> out;  ///< fork the patched tree here
};
struct HostnameStmt {
  Location archive;
  std::string hostname;
};
struct FileStmt {
  Location archive;
  core::FileCustomization file;
};
struct SshKeyStmt {
  Location archive;
  core::SshKeysCustomization keys;
};
struct UserStmt {
  Location archive;
  core::UserCustomization user;
};
struct NetworkStmt {
  Location archive;
  core::NetworkInterface nic;
};
struct UserDataStmt {
  Location archive;
  std::string user_data;
};
struct ResetIdentityStmt {
  Location archive;
};

using StatementBody = std::variant<CreateStmt, ImageStmt, PopulateStmt, ReplaceStmt, CopyStmt, PatchStmt,
                                   HostnameStmt, FileStmt, SshKeyStmt, UserStmt, NetworkStmt, UserDataStmt,
                                   ResetIdentityStmt>;

struct Statement {
  std::string keyword;  ///< "replace"
  SourcePos pos;
  StatementBody body;
};

struct ContainerFile {
  std::vector<Statement> statements;  ///< in file order
  /// The xl config: the file without its expressions, line structure kept.
  std::string xl_config;
};

/// Parses a container file. `file_name` only names it in errors. A file with
/// an error yields INVALID_ARGUMENT "FILE:LINE:COLUMN: message" (the first
/// error) and no statements. Total: any byte string gives a result or an
/// error, never a crash, and input size bounds the work (linear scans).
Result<ContainerFile> parseContainer(std::string_view text, std::string_view file_name);

/// The tree a statement edits or makes (the archive / target), or nullopt
/// for [create], which reads a host directory.
std::optional<Location> statementTarget(const Statement& s);

/// For a CreateDomain's container_text: every statement must change the
/// new root and nothing else, as the provisioning saga can undo only that
/// (by deleting the clone). So each is a file statement (replace, copy,
/// patch, or a typed one) whose tree is "root" or `root` itself
/// ("vol:POOL/NAME-root"), with no diff or fork option and no [patch]
/// OUT-URI. INVALID_ARGUMENT "FILE:LINE:COLUMN: [keyword] ..." naming the
/// first statement that is not.
Status checkForNewRoot(const ContainerFile& file, std::string_view file_name, const core::VolumeRef& root);

/// For a container file run on its own (vm-container): no statement may
/// name "root", which only a CreateDomain has. INVALID_ARGUMENT
/// "FILE:LINE:COLUMN: ..." naming the first that does.
Status checkNoNewRoot(const ContainerFile& file, std::string_view file_name);

}  // namespace xenctl::customize
