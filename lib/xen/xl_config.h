// The xl config reader: xl.cfg(5) text, parsed by Xen's own libxlutil (the
// parser `xl create` uses), mapped onto a DomainSpec. A pure function: no
// libxl_ctx, no Xen, no files (the caller reads the file), so it is
// unit-tested on any machine.
#pragma once

#include <span>
#include <string_view>

#include "lib/core/domain.h"
#include "lib/core/status.h"

namespace xenctl::xen {

/// The keys readXlConfig maps, in xl.cfg(5)'s spelling: name, uuid, type
/// (and the legacy builder), memory, maxmem, vcpus, maxvcpus, kernel,
/// ramdisk, cmdline (or root and extra), bootloader, bootloader_args, disk,
/// vif, on_poweroff, on_reboot, on_crash.
std::span<const std::string_view> supportedXlKeys();

/// The largest xl config text readXlConfig takes (1 MiB; real ones are a
/// few hundred bytes).
inline constexpr size_t kMaxXlConfigBytes = size_t{1} << 20;

/// Reads `text`, the contents of the xl config file `file_name` (used in
/// messages only), as `xl create` reads it, and maps it onto a spec:
///  - absent keys take xl's defaults: type pv (or builder: hvm | generic),
///    memory 32 MiB (maxmem when only maxmem is given), vcpus 1 (maxvcpus
///    when only maxvcpus is given), destroy / restart / destroy;
///  - cmdline is cmdline, else "root=ROOT EXTRA" from root and extra;
///  - disk entries go through libxlutil's xl-disk-configuration(5) parser
///    (positional TARGET,FORMAT,VDEV,ACCESS and key=value forms); vif
///    entries are xl's key=value lists (bridge, mac, ip);
///  - the uuid, when given, is checked and put in canonical form; none is
///    made up (the daemon assigns one).
/// The spec is not normalized: ranges, names and defaults of the daemon
/// (vdevs, MACs) are normalizeSpec's job.
///
/// INVALID_ARGUMENT, naming the file and, where known, the line:
///  - a syntax error, with libxlutil's message;
///  - every key outside supportedXlKeys(), all at once with their lines,
///    and every unsupported option inside a disk or vif entry (xenctld
///    never silently ignores part of a config, where xl would warn and go
///    on);
///  - a value of the wrong kind or out of range, no name, cmdline together
///    with root or extra, builder contradicting type, a text over
///    kMaxXlConfigBytes, a NUL byte anywhere (libxlutil would abort on one).
Result<core::DomainSpec> readXlConfig(std::string_view text, std::string_view file_name);

}  // namespace xenctl::xen
