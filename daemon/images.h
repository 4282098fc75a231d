// The [images] configuration made ready for ImageManager.
#pragma once

#include "daemon/config.h"
#include "lib/provision/image_manager.h"

namespace xenctl::daemon {

/// Reads the trusted minisign keys (FAILED_PRECONDITION naming a file that
/// cannot be read or is not a key) and prepares STATE_DIR/images.tmp, where
/// imports unpack (emptied: what is there is left from a crash).
Result<provision::ImageConfig> imageConfig(const Config& config);

}  // namespace xenctl::daemon
