#include "lib/provision/host_paths.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lib/image/uri.h"

namespace xenctl::provision {
namespace {

bool isAdmin(const Caller& c) { return c.role == core::Role::kAdmin; }

std::string trimSlash(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// The real path of the longest existing prefix of `path`, with the rest
// appended: where the kernel would resolve it today.
std::string resolveExisting(const std::string& path) {
  std::filesystem::path p(path), rest;
  while (!p.empty() && p != p.root_path()) {
    char buf[PATH_MAX];
    if (::realpath(p.c_str(), buf) != nullptr)
      return trimSlash((std::filesystem::path(buf) / rest).lexically_normal().string());
    rest = rest.empty() ? p.filename() : p.filename() / rest;
    p = p.parent_path();
  }
  return path;
}

}  // namespace

HostPaths::HostPaths(Options options) : options_(std::move(options)) {
  for (auto& d : options_.allowed_paths) d = trimSlash(d);
}

Status HostPaths::checkPath(const Caller& caller, std::string_view path, std::string_view what) const {
  if (isAdmin(caller)) return absl::OkStatus();
  auto denied = [&](std::string_view why) {
    return absl::PermissionDeniedError(absl::StrCat(
        av(what), ": host path ", av(path), " ", av(why), "; only an admin may name host paths outside [security] ",
        "allowed_paths (",
        options_.allowed_paths.empty() ? "none configured" : absl::StrJoin(options_.allowed_paths, ", "),
        "); use a managed volume (vol:POOL/NAME) or ask an admin"));
  };
  if (path.empty() || path.front() != '/') return denied("is not absolute");
  for (absl::string_view part : absl::StrSplit(av(path), '/'))
    if (part == "." || part == "..") return denied("has a '.' or '..' component");
  const std::string p = trimSlash(std::string(path));
  for (const auto& dir : options_.allowed_paths) {
    if (!image::pathIsUnder(p, dir)) continue;
    // Compared with the directory's own real path, so an allowed directory
    // that is itself reached through a symlink still works.
    if (image::pathIsUnder(resolveExisting(p), resolveExisting(dir))) return absl::OkStatus();
    return denied(absl::StrCat("leads out of ", dir, " through a symlink"));
  }
  return denied("is not under an allowed directory");
}

Status HostPaths::checkUri(const Caller& caller, std::string_view uri, std::string_view what) const {
  if (isAdmin(caller) || !absl::StartsWithIgnoreCase(av(uri), "file:")) return absl::OkStatus();
  auto path = image::fileUriPath(uri);
  if (!path.ok()) return annotate(path.status(), what);
  return checkPath(caller, *path, what);
}

Status HostPaths::checkSpec(const Caller& caller, const core::DomainSpec& spec) const {
  const std::string who = absl::StrCat("domain '", spec.name, "': ");
  for (const auto& d : spec.disks) {
    if (core::isVolumeTarget(d.target)) {
      auto ref = core::parseVolumeTarget(d.target);
      if (!ref.ok()) return annotate(ref.status(), who + "disk " + d.vdev);
      XENCTL_RETURN_IF_ERROR(checkVolume(caller, *ref, d.mode != "r"));
      continue;
    }
    XENCTL_RETURN_IF_ERROR(checkPath(caller, d.target, absl::StrCat(who, "disk ", d.vdev)));
  }
  if (!spec.kernel.empty()) XENCTL_RETURN_IF_ERROR(checkPath(caller, spec.kernel, who + "kernel"));
  if (!spec.ramdisk.empty()) XENCTL_RETURN_IF_ERROR(checkPath(caller, spec.ramdisk, who + "ramdisk"));
  if (!spec.bootloader.empty() && !isAdmin(caller) &&
      std::find(options_.bootloaders.begin(), options_.bootloaders.end(), spec.bootloader) ==
          options_.bootloaders.end())
    return absl::PermissionDeniedError(absl::StrCat(
        who, "bootloader '", spec.bootloader, "' is not one of [security] bootloaders (",
        options_.bootloaders.empty() ? "none configured" : absl::StrJoin(options_.bootloaders, ", "),
        "); libxl runs it as root, so only an admin may name another"));
  return absl::OkStatus();
}

Status HostPaths::checkVolume(const Caller& caller, const core::VolumeRef& ref, bool writable) const {
  return options_.volume_check ? options_.volume_check(caller, ref, writable) : absl::OkStatus();
}

std::optional<std::vector<std::string>> HostPaths::fileRoots(const Caller& caller) const {
  if (isAdmin(caller)) return std::nullopt;
  return options_.allowed_paths;
}

}  // namespace xenctl::provision
