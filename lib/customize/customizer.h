// Customizer: applies the typed customizations (core::Customizations) and the
// per-clone identity reset to a guest's root file system, offline, through
// the FileTree port. Nothing from the guest runs on the host; the only host
// program run is ssh-keygen (through core::ProcessRunner) for host keys.
#pragma once

#include <string>

#include "lib/core/customization.h"
#include "lib/core/file_tree.h"
#include "lib/core/process_runner.h"
#include "lib/core/status.h"

namespace xenctl::customize {

/// Every change is planned before the first write: the image's /etc/passwd,
/// /etc/group, /etc/hosts … are read, every customization is checked against
/// them and rendered in memory, SSH host keys are generated on the host; only
/// then is anything written. So a request that is wrong in any part (a bad
/// hostname, an unknown user or group, no network system to configure)
/// changes nothing. A write that fails after that (a full file system) leaves
/// the earlier writes in place and names the path.
///
/// What is written, in this order (later entries win on the same path):
///  - users: /etc/passwd, /etc/shadow (the given crypt(3) hash, else locked
///    "!"), /etc/group and /etc/gshadow memberships; a new user gets the next
///    free uid >= 1000, its own group (gid = uid when free) and /home/NAME 0755.
///  - hostname: /etc/hostname and the "127.0.1.1" line of /etc/hosts.
///  - SSH authorized keys: ~/.ssh 0700 and authorized_keys 0600, owned by the
///    user as the image's /etc/passwd gives it; each key appears once.
///  - network, for systemd-networkd: /etc/systemd/network/10-xenctl-MAC.network
///    matched by MAC. For ifupdown: /etc/network/interfaces.d/xenctl-MAC with
///    allow-hotplug stanzas for both names vif N can have in a PV guest, enXN
///    (systemd-udev's Xen naming, v250+, Debian 12) and ethN (the kernel's name,
///    net.ifnames=0 or no udev); only the one that appears is brought up.
///    N is NetworkInterface::vif_index, else the position in `networks`.
///    Stanzas of the image's /etc/network/interfaces for those names are
///    commented out, and a "source" line for interfaces.d is added if missing.
///    The image's choice: networkd when it is enabled (linked in
///    /etc/systemd/system/*.wants), else ifupdown when /etc/network/interfaces
///    exists, else networkd when /etc/systemd/network or its unit exists.
///  - cloud-init NoCloud seed (/var/lib/cloud/seed/nocloud/) with user-data.
///  - identity reset (unless reset_identity is false):
///    /etc/machine-id is made an EMPTY file: systemd then writes a fresh id at
///    each clone's first boot, without "first boot" semantics. We do not write
///    "uninitialized": that form starts ConditionFirstBoot units such as
///    systemd-firstboot.service, which prompts on the console for what a
///    debootstrapped image leaves unset. /var/lib/dbus/machine-id is removed
///    when it is a regular file (Debian links it to /etc/machine-id).
///    SSH host keys of exactly the types the image has (/etc/ssh/ssh_host_*_key)
///    are replaced by fresh ones (private 0600, .pub 0644, root:root) so that
///    sshd starts with no first-boot hook; /var/lib/systemd/random-seed gets
///    512 new random bytes (0600) where /var/lib/systemd exists;
///    /etc/udev/rules.d/70-persistent-net.rules is removed.
///  - files: each with its mode and owner ("USER[:GROUP]", names looked up
///    in the image's own /etc/passwd and /etc/group, numbers taken as they
///    are); missing parent directories are made 0755 root:root.
///
/// Every error starts "customizing 'NAME': " and names the customization and
/// the path. Codes: INVALID_ARGUMENT for a bad request (hostname, path, key,
/// hash, address); NOT_FOUND for a user or group missing from the image;
/// FAILED_PRECONDITION when the image lacks what a customization needs (no
/// network system, a path that is a directory); the FileTree's codes for
/// reads and writes.
class Customizer {
 public:
  /// `runner` runs ssh-keygen (real: sys::PosixProcessRunner); `opener`
  /// opens a device for applyToDevice. Both must outlive the Customizer.
  Customizer(core::ProcessRunner& runner, core::FileTreeOpener opener);

  /// Applies `c` to an open tree; does not close it.
  Status apply(core::FileTree& tree, const core::Customizations& c);

  /// Opens `device_path` writable through the opener, applies `c`, closes.
  /// The tree is closed even when applying fails (so the file system stays
  /// consistent), and the first error is returned.
  Status applyToDevice(const std::string& device_path, const core::Customizations& c);

 private:
  core::ProcessRunner& runner_;
  core::FileTreeOpener opener_;
};

}  // namespace xenctl::customize
