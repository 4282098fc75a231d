// HostPaths: which host paths a caller may name in a request (issue 13,
// part 4). A host path in a request is a way to make xenctld, which runs as
// root, read, write or run a file for the caller: a raw disk target, a
// kernel or ramdisk, a bootloader (run by libxl as root), a file:// URI to
// import from or export to, an export's source directory, a container
// file's paths. Admins may name any; everyone else only paths under the
// configured [security] allowed_paths, and only a bootloader that
// [security] bootloaders lists.
//
// The managers check what they are asked at once (DomainManager for a spec,
// whether given or read from an xl config; ImageManager for import and
// export; ContainerRunner for a container file; the Provisioner and the
// DomainForker for the specs they make), with a PERMISSION_DENIED that
// names the path and the setting. A file:// transfer is confined again when
// it opens the file (core::FetchOptions::file_roots: openat2 beneath the
// allowed directory, so a symlink cannot lead out, and only regular files).
// Paths handed to libxl (kernels, disks) are opened later by libxl: allow
// only directories whose contents non-admins cannot change.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/domain.h"
#include "lib/core/volume.h"
#include "lib/provision/caller.h"

namespace xenctl::provision {

class HostPaths {
 public:
  /// The `vol:` disks of a spec, checked against the caller's rights on the
  /// volume (authorization, issue 13 part 3: the daemon sets it). Unset:
  /// every volume is allowed, as before roles are mapped.
  using VolumeCheck = std::function<Status(const Caller&, const core::VolumeRef&, bool writable)>;

  struct Options {
    /// Absolute directories under which non-admins may name host paths.
    std::vector<std::string> allowed_paths;
    /// Bootloaders non-admins may name, as written in a spec ("pygrub" or
    /// an absolute path).
    std::vector<std::string> bootloaders;
    VolumeCheck volume_check;
  };

  /// Nothing allowed to non-admins.
  HostPaths() = default;
  explicit HostPaths(Options options);

  /// Whether `caller` may name `path`. Admins: any path. Others: an absolute
  /// path without "." or ".." components, under one of allowed_paths, whose
  /// existing part resolves there (a symlink may not lead out).
  /// PERMISSION_DENIED naming `what`, the path and [security] allowed_paths.
  Status checkPath(const Caller& caller, std::string_view path, std::string_view what) const;
  /// A file:// URI's path as checkPath checks it; other schemes pass.
  Status checkUri(const Caller& caller, std::string_view uri, std::string_view what) const;
  /// Every host path of a spec: disk targets that are not vol: (those go to
  /// the volume check), kernel, ramdisk; the bootloader from `bootloaders`.
  Status checkSpec(const Caller& caller, const core::DomainSpec& spec) const;
  /// A managed volume the caller names (a disk, a container file's target):
  /// the volume check when the daemon set one, else allowed.
  Status checkVolume(const Caller& caller, const core::VolumeRef& ref, bool writable) const;
  /// Where this caller's file:// transfers must stay (FetchOptions::file_roots):
  /// nullopt (anywhere) for admins, else allowed_paths.
  std::optional<std::vector<std::string>> fileRoots(const Caller& caller) const;

 private:
  Options options_;
};

}  // namespace xenctl::provision
