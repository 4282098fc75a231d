// Packing a file system read offline (the FileTree port) into an image
// archive: what the container language's fork option and [patch]'s
// OUT-URI store, so the changed tree can be imported or populated
// elsewhere (paper §4.10).
#pragma once

#include <stop_token>

#include "lib/core/fetcher.h"
#include "lib/core/file_tree.h"
#include "lib/core/status.h"
#include "lib/image/archive_writer.h"

namespace xenctl::customize {

/// Writes every directory, regular file and symlink of `tree`, with its
/// mode and owner, into an archive of `format` ("." for the root, then
/// "./etc/hostname" ..., parents before children, names sorted). Entries of
/// other types (device nodes, fifos, sockets) are left out, as `vm-image
/// export` of a volume leaves them; hard links become copies. The tree's
/// errors are returned naming the path; CANCELLED when `stop` fires.
Result<image::PackStats> packTree(core::FileTree& tree, image::ExportFormat format, const core::ByteSink& sink,
                                  std::stop_token stop = {});

}  // namespace xenctl::customize
