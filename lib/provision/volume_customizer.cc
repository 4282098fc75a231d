#include "lib/provision/volume_customizer.h"

#include "absl/strings/str_cat.h"
#include "lib/core/domain.h"

namespace xenctl::provision {

VolumeCustomizer::VolumeCustomizer(StorageManager& storage, OperationRegistry& ops, Customize customize)
    : storage_(storage), ops_(ops), customize_(std::move(customize)) {}

Result<core::OperationRecord> VolumeCustomizer::customize(Request req, const Caller& caller) {
  XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, storage_.pool(req.pool));
  const std::string pool = p->poolName();
  const std::string target = absl::StrCat(pool, "/", req.name);
  const std::string step = absl::StrCat("customizing volume '", target, "'");
  core::Customizations& c = req.customizations;
  if (c.instance_id.empty()) c.instance_id = core::newUuid();
  if (c.domain_name.empty()) c.domain_name = target;
  auto precheck = [&]() -> Status {
    XENCTL_RETURN_IF_ERROR(core::validateVolumeName(req.name));
    if (!customize_)
      return absl::UnimplementedError(absl::StrCat(step, ": customizing is not built into this xenctld"));
    if (c.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          step, ": nothing to change; give a hostname, keys, files, users, addresses or user-data, or leave the "
                "identity reset on"));
    for (size_t i = 0; i < c.networks.size(); ++i) {
      const core::NetworkInterface& n = c.networks[i];
      if (n.mac.empty() || n.address.find('/') == std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat(
            step, ": interface ", i, " needs a MAC and an address with its prefix length (10.0.0.5/24); got mac '",
            n.mac, "', address '", n.address, "'"));
    }
    XENCTL_ASSIGN_OR_RETURN(core::Volume v, p->get(req.name));
    if (auto image = storage_.imageOf(pool, req.name))
      return absl::FailedPreconditionError(
          absl::StrCat(step, ": it is the base volume of image '", *image, "'; clone it and customize the clone"));
    if (v.read_only)
      return absl::FailedPreconditionError(absl::StrCat(
          step, ": it is read-only (a golden image's volume or a snapshot); clone it and customize the clone"));
    return storage_.requireUnused(pool, req.name, step);
  };
  return ops_.startChecked(
      {"customize-volume", target, caller.request_id, caller.uid, caller.key(), caller.request_digest}, precheck,
      // A copy: the work is made (its captures evaluated) before precheck reads `c`.
      [this, pool, name = req.name, step, c](OperationContext& ctx) -> Status {
        ctx.phase("customize", 5,
                  c.reset_identity ? "applying the customizations and a new identity" : "applying the customizations");
        // Checked again: a domain may have started since the call.
        XENCTL_RETURN_IF_ERROR(storage_.requireUnused(pool, name, step));
        XENCTL_ASSIGN_OR_RETURN(core::VolumeManager * p, storage_.pool(pool));
        XENCTL_ASSIGN_OR_RETURN(core::Volume v, p->get(name));
        return customize_(v.host_device.empty() ? v.path : v.host_device, c);
      });
}

}  // namespace xenctl::provision
