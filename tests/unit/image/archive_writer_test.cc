#include "lib/image/archive_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fakes/fake_fetcher.h"
#include "tests/unit/image/image_test_util.h"

namespace xenctl::image {
namespace {

using testing::readAll;
using testing::TempDir;

// A tree packed as cpio.gz and as tar.zst unpacks (safely) into the same tree: contents, modes, times, links.
TEST(PackDirectory, RoundTripsThroughTheExtractor) {
  TempDir t;
  const std::string src = t.sub("src");
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((src + "/etc").c_str(), 0750), 0);
  testing::writeFile(src + "/etc/hostname", "golden\n");
  testing::writeFile(src + "/big", std::string(2 << 20, 'b'));
  ASSERT_EQ(::chmod((src + "/big").c_str(), 0600), 0);
  ASSERT_EQ(::link((src + "/etc/hostname").c_str(), (src + "/hostname2").c_str()), 0);
  ASSERT_EQ(::symlink("etc/hostname", (src + "/hn").c_str()), 0);
  for (ExportFormat f : {ExportFormat::kCpioGz, ExportFormat::kTarZst}) {
    SCOPED_TRACE(std::string(toString(f)));
    std::string archive;
    auto packed = packDirectory(src, f, [&](std::string_view chunk) {
      archive.append(chunk);
      return Status();
    });
    ASSERT_TRUE(packed.ok()) << packed.status();
    EXPECT_EQ(packed->entries, 6u);  // ".", etc, etc/hostname, big, hostname2, hn
    EXPECT_EQ(packed->bytes, archive.size());
    const std::string out = t.sub(std::string("out-") + (f == ExportFormat::kCpioGz ? "cpio" : "tar"));
    ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
    auto x = extractArchive(testing::chunked(archive, 5000), out, {});
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(x->filter, f == ExportFormat::kCpioGz ? "gzip" : "zstd");
    EXPECT_EQ(readAll(out + "/etc/hostname"), "golden\n");
    EXPECT_EQ(readAll(out + "/hostname2"), "golden\n");
    EXPECT_EQ(readAll(out + "/big"), std::string(2 << 20, 'b'));
    struct stat a, b;
    ASSERT_EQ(::stat((out + "/etc/hostname").c_str(), &a), 0);
    ASSERT_EQ(::stat((out + "/hostname2").c_str(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino) << "the hard link is kept";
    ASSERT_EQ(::stat((out + "/big").c_str(), &a), 0);
    EXPECT_EQ(a.st_mode & 07777, 0600u);
    ASSERT_EQ(::stat((out + "/etc").c_str(), &a), 0);
    EXPECT_EQ(a.st_mode & 07777, 0750u);
    char link[64] = {0};
    ASSERT_GT(::readlink((out + "/hn").c_str(), link, sizeof link), 0);
    EXPECT_STREQ(link, "etc/hostname");
  }
}

// The sink's error stops packing; a missing directory is NOT_FOUND; formats parse.
TEST(PackDirectory, Errors) {
  TempDir t;
  auto missing = packDirectory(t.sub("nope"), ExportFormat::kTarZst, [](std::string_view) { return Status(); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  testing::writeFile(t.sub("f"), std::string(1 << 20, 'x'));
  auto refused = packDirectory(t.path(), ExportFormat::kTarZst,
                               [](std::string_view) { return absl::UnavailableError("disk gone"); });
  EXPECT_EQ(refused.status(), absl::UnavailableError("disk gone"));
  EXPECT_EQ(parseExportFormat("tar.zst").value(), ExportFormat::kTarZst);
  EXPECT_EQ(parseExportFormat(toString(ExportFormat::kCpioGz)).value(), ExportFormat::kCpioGz);
  EXPECT_EQ(parseExportFormat("zip").status().code(), absl::StatusCode::kInvalidArgument);
}

// exportDirectory stores the archive at the URI in one stream; its SHA-256 is the stored bytes'.
TEST(ExportDirectory, StoresTheArchiveAtTheUri) {
  TempDir t;
  testing::writeFile(t.sub("a"), std::string(3 << 20, 'a'));
  fakes::FakeFetcher fetcher;
  auto r = exportDirectory(fetcher, t.path(), ExportFormat::kCpioGz, "ftp://h/out/img.cpio.gz", {});
  ASSERT_TRUE(r.ok()) << r.status();
  std::string stored;
  ASSERT_TRUE(fetcher
                  .fetch(
                      "ftp://h/out/img.cpio.gz",
                      [&](std::string_view c) {
                        stored.append(c);
                        return Status();
                      },
                      {})
                  .ok());
  EXPECT_EQ(r->pack.bytes, stored.size());
  EXPECT_EQ(r->sha256, sha256(stored));
  EXPECT_EQ(exportDirectory(fetcher, t.path(), ExportFormat::kCpioGz, "scp://h/x", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(exportDirectory(fetcher, t.sub("nope"), ExportFormat::kCpioGz, "ftp://h/y", {}).status().code(),
            absl::StatusCode::kNotFound);
}

// EntryWriter's entries unpack as written, in both formats: directories, files with modes, symlinks.
TEST(EntryWriter, RoundTripsThroughTheExtractor) {
  TempDir t;
  for (ExportFormat f : {ExportFormat::kCpioGz, ExportFormat::kTarZst}) {
    SCOPED_TRACE(std::string(toString(f)));
    std::string archive;
    core::ByteSink sink = [&](std::string_view chunk) {
      archive.append(chunk);
      return Status();
    };
    auto w = EntryWriter::open(f, sink);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->directory(".", 0755, 0, 0).ok());
    ASSERT_TRUE((*w)->directory("./etc", 0750, 0, 0).ok());
    ASSERT_TRUE((*w)->file("./etc/hostname", "web1\n", 0640, 0, 0).ok());
    ASSERT_TRUE((*w)->file("./etc/empty", "", 0600, 0, 0).ok());
    ASSERT_TRUE((*w)->symlink("./hn", "etc/hostname", 0, 0).ok());
    auto stats = (*w)->close();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->entries, 5u);
    EXPECT_EQ(stats->bytes, archive.size());
    const std::string out = t.sub(std::string("out-") + std::string(toString(f)));
    ASSERT_EQ(::mkdir(out.c_str(), 0700), 0);
    auto x = extractArchive(testing::chunked(archive), out, {});
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(readAll(out + "/etc/hostname"), "web1\n");
    EXPECT_EQ(readAll(out + "/etc/empty"), "");
    struct stat st;
    ASSERT_EQ(::stat((out + "/etc/hostname").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_nlink, 1u) << "entries are not taken as hard links of one another";
    ASSERT_EQ(::stat((out + "/etc").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u);
    char link[64] = {0};
    ASSERT_GT(::readlink((out + "/hn").c_str(), link, sizeof link), 0);
    EXPECT_STREQ(link, "etc/hostname");
  }
  EXPECT_EQ(exportFormatFor("ftp://h/etc.tar.zst"), ExportFormat::kTarZst);
  EXPECT_EQ(exportFormatFor("/srv/etc.tzst"), ExportFormat::kTarZst);
  EXPECT_EQ(exportFormatFor("file:///var/images/fido-etc-patched"), ExportFormat::kCpioGz);
}

// The sink's error stops the writer and is what the failing call returns.
TEST(EntryWriter, SinkErrorStopsIt) {
  core::ByteSink sink = [](std::string_view) { return absl::UnavailableError("disk gone"); };
  auto w = EntryWriter::open(ExportFormat::kCpioGz, sink);
  Status st = w.ok() ? Status() : w.status();
  if (w.ok()) {
    for (int i = 0; i < 64 && st.ok(); ++i)
      st = (*w)->file("./f" + std::to_string(i), std::string(1 << 20, static_cast<char>('a' + i % 26)), 0644, 0, 0);
    if (st.ok()) st = (*w)->close().status();
  }
  EXPECT_EQ(st, absl::UnavailableError("disk gone"));
}

}  // namespace
}  // namespace xenctl::image
