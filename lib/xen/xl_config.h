// The xl config reader: xl.cfg(5) text, parsed by Xen's own libxlutil (the
// parser `xl create` uses), mapped onto a DomainSpec. A pure function: no
// libxl_ctx, no Xen, no files (the caller reads the file), so it is
// unit-tested on any machine.
#pragma once

#include <span>
#include <string_view>

#include "lib/core/domain.h"
#include "lib/core/status.h"
#include "lib/xen/xl_domain_config.h"

namespace xenctl::xen {

/// The keys readXlConfig accepts: every key of xl.cfg(5) for Xen 4.17 that
/// xl's parser reads, but those xlKeys() refuses (vncviewer, device_model,
/// vif2).
std::span<const std::string_view> supportedXlKeys();

/// The largest xl config text readXlConfig takes (1 MiB; real ones are a
/// few hundred bytes).
inline constexpr size_t kMaxXlConfigBytes = size_t{1} << 20;

/// Reads `text`, the contents of the xl config file `file_name` (used in
/// messages only), as `xl create` reads it, into a spec that keeps the text
/// (xl_config_file, xl_config_text): the whole config is read first, as
/// readXlDomainConfig builds it (so every key is checked now, not at the
/// first start), then the typed fields are filled from it:
///  - absent keys take xl's defaults: type pv (or builder: hvm | generic),
///    memory 32 MiB (maxmem when only maxmem is given), vcpus 1 (maxvcpus
///    when only maxvcpus is given), destroy / restart / destroy / destroy
///    (on_poweroff / on_reboot / on_crash / on_watchdog);
///  - cmdline is cmdline, else "root=ROOT EXTRA" from root and extra;
///  - disks: target, vdev, access and format (phy, qcow2, "" for raw, or
///    qcow, vhd, qed, empty) from libxlutil's xl-disk-configuration(5)
///    parser; vifs: bridge, mac (when given) and ip;
///  - the uuid, when given, is checked and put in canonical form; none is
///    made up (the daemon assigns one).
/// The spec is not normalized: ranges, names and defaults of the daemon
/// (vdevs, MACs) are normalizeSpec's job.
///
/// INVALID_ARGUMENT, naming the file and, where known, the line: what
/// readXlDomainConfig refuses (syntax errors with libxlutil's message, the
/// line and the column and what xl expects there, every
/// unknown key at once, the refused keys, wrong values naming the key and
/// what it accepts), and an on_poweroff / on_reboot / on_crash / on_watchdog of
/// soft-reset, which xenctld's watcher does not perform.
Result<core::DomainSpec> readXlConfig(std::string_view text, std::string_view file_name, const HostCpus& host = {});

}  // namespace xenctl::xen
