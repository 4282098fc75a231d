// libFuzzer entry for unpacking images (extractArchive, copyRawImage,
// detectImageKind). Each input is a stream, given in chunks of a size taken
// from its first byte, unpacked into a fresh directory under a private
// temporary one; afterwards nothing may exist outside that directory, and it
// is removed before the next input.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "lib/image/archive_extractor.h"
#include "tests/fuzz/fuzz_temp_dir.h"

namespace fs = std::filesystem;
using namespace xenctl::image;

namespace {
// Makes everything below `p` removable (an archive may ship 0000 directories).
void removeTree(const fs::path& p) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  ::chmod(p.c_str(), 0700);
  fs::remove_all(p, ec);
  if (fs::exists(fs::symlink_status(p))) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] * 64;
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto source = [&, pos = size_t{0}]() mutable -> xenctl::Result<std::string> {
    std::string out(stream.substr(pos, std::min(chunk, stream.size() - pos)));
    pos += out.size();
    return out;
  };
  ExtractPolicy policy;
  policy.owners = ExtractPolicy::Owners::kIgnore;
  policy.max_total_bytes = uint64_t{16} << 20;
  policy.max_entries = 4096;

  const fs::path& base = xenctl::fuzz::tempDir("archive");
  const fs::path target = base / "t";
  fs::create_directory(target);
  if (detectImageKind(stream.substr(0, 65536)) == ImageKind::kRawExt) {
    (void)copyRawImage(source, (base / "raw.img").string(), policy);
    std::error_code ec;
    fs::remove(base / "raw.img", ec);
  } else {
    (void)extractArchive(source, target.string(), policy);
  }
  removeTree(target);
  // Nothing from the archive may appear beside the target.
  if (!fs::is_empty(base)) std::abort();
  return 0;
}
