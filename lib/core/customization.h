// The typed changes made to a new domain's root file system before its
// first boot (DESIGN.md "The container language", "Provisioning"). Applied
// offline over a core::FileTree by customize::Customizer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace xenctl::core {

/// A file written into the guest, replacing what was there.
struct FileCustomization {
  std::string path;     ///< absolute inside the guest
  std::string content;
  uint32_t mode = 0644;  ///< permission bits
  /// "" (root), "USER" or "USER:GROUP", looked up in the image's own
  /// /etc/passwd and /etc/group; numeric ids are taken as they are.
  std::string owner;
};

/// Keys appended (once each) to USER's ~/.ssh/authorized_keys.
struct SshKeysCustomization {
  std::string user = "root";
  std::vector<std::string> keys;  ///< one OpenSSH public key line each
};

/// A user account: created when missing, else its hash and groups updated.
struct UserCustomization {
  std::string name;
  std::string password_hash;        ///< crypt(3) hash, "" = locked ("!")
  std::vector<std::string> groups;  ///< supplementary groups, each must exist
};

/// A static address for the interface with this MAC.
struct NetworkInterface {
  std::string mac;      ///< 00:16:3e:xx:xx:xx
  std::string address;  ///< "10.0.0.5/24" (IPv4 or IPv6, with a prefix length)
  std::string gateway;  ///< "" = none
  std::vector<std::string> dns;
  /// The vif's position (devid) in the domain's spec, -1 = its position in
  /// Customizations::networks. Only ifupdown needs it: it matches interfaces
  /// by name, and a PV guest names vif N "enXN" (udev, Debian 12) or "ethN".
  int vif_index = -1;
};

struct Customizations {
  std::optional<std::string> hostname;
  std::vector<FileCustomization> files;
  std::vector<SshKeysCustomization> ssh_keys;
  std::vector<UserCustomization> users;
  std::vector<NetworkInterface> networks;
  /// A cloud-init NoCloud seed is written when set (meta-data, user-data,
  /// network-config from `networks`), with instance-id = `instance_id`.
  std::optional<std::string> cloud_init_user_data;
  /// The domain's uuid: the NoCloud instance-id and nothing else.
  std::string instance_id;
  /// The domain's name, for error messages only ("customizing 'web1': …");
  /// "" = the hostname, else the device path.
  std::string domain_name;
  /// A new machine-id, SSH host keys and random seed (the default).
  bool reset_identity = true;

  bool empty() const {
    return !hostname && files.empty() && ssh_keys.empty() && users.empty() && networks.empty() &&
           !cloud_init_user_data && !reset_identity;
  }
};

}  // namespace xenctl::core
