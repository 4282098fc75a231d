// Parsers for the xl-style values of vm-create's and vm-set's flags. They
// only turn text into fields; the daemon checks ranges and names and fills
// defaults (vdevs, MACs, maxima).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/domain.h"
#include "lib/core/status.h"
#include "xenctl/v1/domain.pb.h"

namespace xenctl::client {

/// `--disk`: "TARGET[,VDEV[,MODE]]" ("/dev/vg0/web1,xvda,w", "vol:pool/web1")
/// or xl's key=value form ("target=/srv/a.img,vdev=xvdb,access=ro,format=raw").
/// MODE/access "rw" is "w", "ro" is "r". INVALID_ARGUMENT names the spec.
Result<core::DiskSpec> parseDiskSpec(std::string_view text);

/// `--vif`: "bridge=xenbr0,mac=00:16:3e:00:00:01,ip=10.0.0.2", each key optional.
/// INVALID_ARGUMENT for a key other than bridge, mac and ip.
Result<core::VifSpec> parseVifSpec(std::string_view text);

/// A SIZE flag (MiB, or 512M / 2G / 1T / 524288K), its errors prefixed with the flag.
Result<uint64_t> parseSizeFlag(std::string_view flag, std::string_view text);

/// vm-create's flags as typed on the command line.
struct CreateFlags {
  std::string name;
  std::string memory, maxmem;  ///< SIZE; maxmem may be empty
  uint32_t vcpus = 0, maxvcpus = 0;
  std::string type;  ///< pv | pvh | hvm, or empty
  std::string kernel, ramdisk, cmdline;
  std::vector<std::string> disks, vifs;
  std::string on_poweroff, on_reboot, on_crash, on_watchdog;  ///< xl action names, or empty
  bool define_only = false, paused = false;
  /// The first vif's address ("10.0.0.5/24"); makes a vif on the default
  /// bridge when none is given.
  std::string ip;

  // One-call provisioning: a root from a catalog image and what to change in it.
  std::string image, pool, root_size, root_vdev;  ///< root_size: SIZE
  std::string hostname;
  std::vector<std::string> ssh_key_files;  ///< each: OpenSSH public keys, one a line
  std::string ssh_user;                    ///< "" = root
  std::vector<std::string> files;          ///< PATH=TEXT or PATH=@LOCAL_FILE
  std::vector<std::string> users;          ///< NAME[:HASH][:GROUP,GROUP...]
  std::string gateway;
  std::vector<std::string> dns;            ///< each may hold several, comma-separated
  std::string user_data_file;
  std::string container_file;  ///< a container file run on the new root
  bool keep_identity = false;
};

/// With --image and without --memory / --vcpus: what the domain gets.
inline constexpr uint64_t kImageDefaultMemoryMib = 512;
inline constexpr uint32_t kImageDefaultVcpus = 1;

/// Parses the flags' values into the request; INVALID_ARGUMENT names the flag.
Result<v1::CreateDomainRequest> createArgsFromFlags(const CreateFlags& flags, std::string request_id);

/// The typed customizations of --hostname, --file, --ssh-key/--ssh-user,
/// --user and --user-data, appended to `out`, reading the local files they
/// name. INVALID_ARGUMENT naming the flag for a bad value or an unreadable file.
Status addCustomizationFlags(const CreateFlags& flags, google::protobuf::RepeatedPtrField<v1::Customization>& out);

/// Fills the root and its customizations from --image and the flags that
/// need it (--hostname, --ssh-key, --file ...), reading the local files they
/// name. INVALID_ARGUMENT naming the flag for a bad value, an unreadable
/// file, or a customization flag without --image.
Status addRootFlags(const CreateFlags& flags, v1::CreateDomainRequest& args);

/// Reads an xl config file for the daemon to parse. NOT_FOUND when it does
/// not exist, INVALID_ARGUMENT when it is not a regular file or larger than
/// the daemon takes (1 MiB), both naming the path.
Result<v1::XlConfig> readXlConfigFile(const std::string& path);

/// What vm-create was asked for. From an xl config when --xl-config FILE is
/// given, or when NAME is an existing file and no spec flag is; otherwise
/// from the flags, where NAME, --memory and --vcpus are required.
/// `spec_flags` names the spec flags given (--memory, --vcpus, --type ...);
/// they cannot be combined with an xl config, which says what the domain is
/// (INVALID_ARGUMENT naming them). --define-only and --paused apply to both.
Result<v1::CreateDomainRequest> createArgs(const CreateFlags& flags, const std::string& xl_config_path,
                                    const std::vector<std::string>& spec_flags, std::string request_id);

}  // namespace xenctl::client
