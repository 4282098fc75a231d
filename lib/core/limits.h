// The fixed limits on what a caller controls: string lengths and list
// sizes. They bound every stored object, so that one domain or operation
// always fits in a reply (gRPC's clients take 4 MiB by default) and a list
// can be paged (daemon/services.cc). Limits an operator may want to change
// (sizes of downloads, operations and streams per caller, timeouts) are
// configuration instead (daemon/config.h, xenctld(8)).
#pragma once

#include <cstddef>
#include <string_view>

#include "lib/core/status.h"

namespace xenctl::core {

/// A host path (kernel, ramdisk, bootloader, disk target, export source): PATH_MAX.
inline constexpr size_t kMaxPathBytes = 4096;
/// A URI to fetch from or store to.
inline constexpr size_t kMaxUriBytes = 4096;
/// A kernel command line.
inline constexpr size_t kMaxCmdlineBytes = 4096;
/// A request_id (an idempotency key: a UUID is 36 characters).
inline constexpr size_t kMaxRequestIdBytes = 128;
/// A file name that only names a request's text in errors (an xl config's, a container file's).
inline constexpr size_t kMaxFileNameBytes = 1024;
/// Other short strings of a spec: a uuid, a vdev, a disk format, a vif's bridge or ip, one bootloader argument.
inline constexpr size_t kMaxFieldBytes = 1024;
/// Disks, vifs and bootloader arguments of one domain.
inline constexpr size_t kMaxDisks = 64;
inline constexpr size_t kMaxVifs = 32;
inline constexpr size_t kMaxBootloaderArgs = 64;
/// An operation's message and its final status's message, as stored and
/// shown: longer ones (a tool's output) are cut, saying so.
inline constexpr size_t kMaxOperationMessageBytes = 4096;

/// INVALID_ARGUMENT "WHAT is N bytes, more than the limit of MAX" unless
/// `value` has at most `max` bytes. `what` names the field and its owner
/// ("domain 'web1': cmdline").
Status checkLength(std::string_view value, size_t max, std::string_view what);
/// INVALID_ARGUMENT "WHAT: N given, more than the limit of MAX" unless count <= max.
Status checkCount(size_t count, size_t max, std::string_view what);

/// `text` cut to at most `max` bytes (never inside a UTF-8 sequence), with
/// " ... (N bytes cut)" at the end when it was cut.
std::string truncateText(std::string_view text, size_t max);

}  // namespace xenctl::core
