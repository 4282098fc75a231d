#include "lib/provision/image_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/storage/dir_volumes.h"
#include "lib/sys/posix_process_runner.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/unit/image/image_test_util.h"
#include "tests/unit/provision/test_util.h"

namespace xenctl::provision {
namespace {

using core::OperationState;
using ::testing::HasSubstr;
namespace it = image::testing;

// A dir pool, the catalog in memory, images served by a FakeFetcher; mkfs.ext4 is the real one.
class ImageManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!runner_.run({"mkfs.ext4", "-V"}, absl::Seconds(30)).ok()) GTEST_SKIP() << "mkfs.ext4 is not installed";
    std::vector<std::unique_ptr<core::VolumeManager>> pools;
    auto p = storage::DirVolumes::open("default", tmp_.sub("pool"), clock_);
    ASSERT_TRUE(p.ok()) << p.status();
    pools.push_back(*std::move(p));
    storage_ = std::make_unique<StorageManager>(std::move(pools), ops_, usage_);
    ASSERT_EQ(::mkdir(tmp_.sub("work").c_str(), 0700), 0);
    useSources(image::ImageSources());
    archive_ = it::buildArchive({it::dir("etc"), it::file("etc/hostname", "golden\n")}, ARCHIVE_FORMAT_CPIO_SVR4_NOCRC,
                                ARCHIVE_FILTER_GZIP);
    fetcher_.serve(kUri, archive_);
  }
  // A manager whose imports follow `sources`.
  void useSources(image::ImageSources sources, HostPaths host_paths = {}) {
    ImageConfig cfg;
    cfg.work_dir = tmp_.sub("work");
    cfg.sources = std::move(sources);
    cfg.host_paths = std::move(host_paths);
    images_ = std::make_unique<ImageManager>(*storage_, fetcher_, *store_, ops_, runner_, clock_, cfg);
  }
  size_t fetchesOf(const std::string& uri) const {
    auto all = fetcher_.requested();
    return static_cast<size_t>(std::count(all.begin(), all.end(), uri));
  }
  core::OperationRecord done(const Result<core::OperationRecord>& r) {
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? waitFinished(ops_, r->id) : core::OperationRecord{};
  }
  ImageManager::ImportRequest req(const std::string& name) {
    return {name, kUri, image::toHex(image::sha256(archive_)), image::SignaturePolicy::kDigest, ""};
  }

  const std::string kUri = "file:///srv/golden.cpio.gz";
  it::TempDir tmp_;
  fakes::FakeClock clock_;
  fakes::FakeFetcher fetcher_;
  sys::PosixProcessRunner runner_;
  std::unique_ptr<state::Store> store_ = std::move(state::Store::open(":memory:").value());
  OperationRegistry ops_{clock_, nullptr, OperationRegistry::Options{}};
  VolumeUsage usage_;
  std::unique_ptr<StorageManager> storage_;
  std::unique_ptr<ImageManager> images_;
  std::string archive_;
};

// An archive becomes an ext4 base volume in the pool and a catalog entry; the staging is gone.
TEST_F(ImageManagerTest, ImportMakesAnExt4BaseVolume) {
  auto op = done(images_->import(req("golden"), adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.kind, "import-image");
  auto all = images_->list();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  const auto& rec = (*all)[0].record;
  EXPECT_EQ(rec.sha256, image::toHex(image::sha256(archive_)));
  EXPECT_EQ(rec.kind, "archive");
  EXPECT_EQ(rec.volume, "golden");
  auto vol = (*storage_->pool(""))->get("golden");
  ASSERT_TRUE(vol.ok()) << vol.status();
  std::string head = it::readAll(vol->path).substr(0, 2048);
  EXPECT_EQ(static_cast<uint8_t>(head[1080]), 0x53);
  EXPECT_EQ(static_cast<uint8_t>(head[1081]), 0xEF);
  EXPECT_TRUE(it::listTree(tmp_.sub("work")).empty()) << "the unpacked tree is removed";
}

// The base volume, made in a staging file and written onto the pool's volume, is a clean ext4 (e2fsck -fn) with
// 4 KiB blocks whose files an independent reader (debugfs) finds; the staging file is gone.
TEST_F(ImageManagerTest, BaseVolumeIsACleanExt4WithTheArchivesFiles) {
  auto op = done(images_->import(req("golden"), adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto vol = (*storage_->pool(""))->get("golden");
  ASSERT_TRUE(vol.ok()) << vol.status();
  auto fsck = runner_.run({"e2fsck", "-fn", vol->path}, absl::Seconds(60));
  ASSERT_TRUE(fsck.ok()) << fsck.status();
  EXPECT_EQ(fsck->exit_code, 0) << fsck->output;
  auto cat = runner_.run({"debugfs", "-R", "cat /etc/hostname", vol->path}, absl::Seconds(60));
  ASSERT_TRUE(cat.ok()) << cat.status();
  EXPECT_THAT(cat->output, HasSubstr("golden\n"));
  auto head = runner_.run({"dumpe2fs", "-h", vol->path}, absl::Seconds(60));
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(head->output, ::testing::ContainsRegex("Block size: +4096"));
  EXPECT_TRUE(it::listTree(tmp_.sub("work")).empty()) << "the staging file is removed";
}

// A non-admin imports and exports through file:// only under [security] allowed_paths, and names no export
// source directory outside them; refusals start no operation; the transfers are confined to the same directories.
TEST_F(ImageManagerTest, NonAdminFileUrisConfined) {
  useSources(image::ImageSources(), HostPaths({{"/srv"}, {}, nullptr}));
  Caller op("", 1000);
  op.role = core::Role::kOperator;
  auto r = images_->import({"x", "file:///etc/shadow", "", image::SignaturePolicy::kNone, ""}, op);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("importing image 'x': host path /etc/shadow"));
  auto e = images_->exportImage({"/root", "file:///srv/root.cpio.gz", image::ExportFormat::kCpioGz}, op);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied) << e.status();
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("export source: host path /root"));
  e = images_->exportImage({tmp_.path(), "file:///etc/cron.d/pwn", image::ExportFormat::kCpioGz}, op);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kPermissionDenied) << e.status();
  EXPECT_TRUE(ops_.list("", false, 100).empty());

  auto done_op = done(images_->import(req("golden"), op));
  EXPECT_EQ(done_op.state, OperationState::kSucceeded) << done_op.status;
  EXPECT_EQ(fetcher_.lastFileRoots(), std::vector<std::string>{"/srv"});
  // An admin's transfers are not confined.
  useSources(image::ImageSources(), HostPaths({{"/srv"}, {}, nullptr}));
  EXPECT_EQ(done(images_->import(req("golden2"), adminCaller())).state, OperationState::kSucceeded);
}

// A catalog image's base volume is golden: read-only in its pool; not
// deleted, resized nor rolled back through the volume calls (errors name
// the image and vm-image delete); a writable clone of it is an ordinary
// volume; vm-image delete removes it with its row.
TEST_F(ImageManagerTest, BaseVolumeStaysGolden) {
  ASSERT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
  core::VolumeManager* pool = *storage_->pool("");
  EXPECT_TRUE(pool->get("golden")->read_only);
  EXPECT_EQ(storage_->imageOf("default", "golden"), "golden");
  for (const auto& r : {storage_->remove("default", "golden", adminCaller()),
                        storage_->resize("default", "golden", 64 << 20, adminCaller())}) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("base volume of image 'golden'"));
    EXPECT_THAT(r.status().message(), HasSubstr("`vm-image delete golden`"));
  }
  EXPECT_EQ(storage_->removeNow("default", "golden").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(storage_->resizeNow("default", "golden", 64 << 20).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(pool->snapshot("golden", "s1", {}).ok());
  auto rb = storage_->rollback("default", "golden", "s1", adminCaller());
  EXPECT_THAT(rb.status().message(), HasSubstr("base volume of image 'golden'"));
  ASSERT_TRUE(storage_->removeNow("default", "golden@s1").ok());
  auto clone = storage_->cloneNow("default", "golden", "web1-root", 0);
  ASSERT_TRUE(clone.ok()) << clone.status();
  EXPECT_FALSE(clone->read_only);
  ASSERT_TRUE(storage_->removeNow("default", "web1-root").ok());

  ASSERT_EQ(done(images_->remove("golden", adminCaller())).state, OperationState::kSucceeded);
  EXPECT_TRUE(absl::IsNotFound(pool->get("golden").status()));
  EXPECT_FALSE(storage_->imageOf("default", "golden"));
  // The catalog and the pool agree again: the same name and digest import anew.
  EXPECT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
}

// At start, a catalog from before the mark gets its bases marked read-only
// and protected; a row whose volume went outside xenctld is reported and is
// no cache: an import of the same digest fetches it again and succeeds.
TEST_F(ImageManagerTest, LoadMarksBasesAndReportsMissingOnes) {
  ASSERT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
  ASSERT_EQ(done(images_->import(req("gone"), adminCaller())).state, OperationState::kSucceeded);
  core::VolumeManager* pool = *storage_->pool("");
  // As an older xenctld left them: writable, unprotected; one deleted by hand.
  ASSERT_TRUE(pool->setReadOnly("golden", false).ok());
  storage_->unprotectImageBase("default", "golden");
  storage_->unprotectImageBase("default", "gone");
  ASSERT_TRUE(pool->remove("gone").ok());
  auto warnings = images_->load();
  ASSERT_TRUE(warnings.ok()) << warnings.status();
  ASSERT_EQ(warnings->size(), 1u);
  EXPECT_THAT((*warnings)[0], HasSubstr("image 'gone': its base volume default/gone is missing"));
  EXPECT_THAT((*warnings)[0], HasSubstr("vm-image delete gone"));
  EXPECT_TRUE(pool->get("golden")->read_only);
  EXPECT_EQ(storage_->imageOf("default", "golden"), "golden");

  ASSERT_TRUE(store_->deleteImage("golden").ok());  // the digest's only row is now the one without a volume
  storage_->unprotectImageBase("default", "golden");
  ASSERT_TRUE(pool->remove("golden").ok());
  const size_t fetches = fetchesOf(kUri);
  auto op = done(images_->import(req("again"), adminCaller()));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(fetchesOf(kUri), fetches + 1) << "fetched, not cloned from a missing volume";
}

// The same SHA-256 is not fetched twice: the second import clones the first's volume.
TEST_F(ImageManagerTest, SameDigestIsClonedNotFetched) {
  ASSERT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
  size_t fetches = fetcher_.requested().size();
  auto op = done(images_->import(req("golden2"), adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(fetcher_.requested().size(), fetches);
  EXPECT_EQ((*images_->list())[0].clones, 1u) << "golden2 is a clone of golden";
}

// A digest from SHA256SUMS beside the image is known before the download: the same bytes are cloned, not fetched.
TEST_F(ImageManagerTest, Sha256SumsDigestIsClonedNotFetched) {
  fetcher_.serve("file:///srv/SHA256SUMS", image::toHex(image::sha256(archive_)) + "  golden.cpio.gz\n");
  auto r = req("golden");
  r.sha256 = "";
  ASSERT_EQ(done(images_->import(r, adminCaller())).state, OperationState::kSucceeded);
  ASSERT_EQ(fetchesOf(kUri), 1u);
  r.name = "golden2";
  auto op = done(images_->import(r, adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(fetchesOf(kUri), 1u) << "the image was fetched again";
  EXPECT_EQ(fetchesOf("file:///srv/SHA256SUMS"), 2u);
  EXPECT_EQ((*images_->list())[0].clones, 1u) << "golden2 is a clone of golden";
}

// A remote image without a signature is refused by default; nothing is kept.
TEST_F(ImageManagerTest, RemoteUnsignedIsRefusedByDefault) {
  const std::string uri = "https://images.example/golden.cpio.gz";
  fetcher_.serve(uri, archive_);
  auto op = done(images_->import({"golden", uri, "", image::SignaturePolicy::kAuto, ""}, adminCaller()));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition) << op.status;
  EXPECT_THAT(op.status.message(), HasSubstr("no signature at " + uri + ".minisig"));
  EXPECT_THAT(op.status.message(), HasSubstr("the default for remote URIs"));
  EXPECT_EQ(fetchesOf(uri), 0u) << "refused before the download";
  EXPECT_TRUE(images_->list()->empty());
  EXPECT_TRUE((*storage_->pool(""))->list()->empty());
  // --allow-unsigned cannot lower the default for remote URIs: refused at once.
  auto lowered = images_->import({"golden", uri, "", image::SignaturePolicy::kNone, ""}, adminCaller());
  EXPECT_EQ(lowered.status().code(), absl::StatusCode::kPermissionDenied) << lowered.status();
  EXPECT_THAT(lowered.status().message(), HasSubstr(uri));
}

// A source configured with policy none imports unsigned images from it, and only from it.
TEST_F(ImageManagerTest, ConfiguredNoneSourceIsAccepted) {
  image::ImageSource lab;
  lab.prefix = "https://lab.example/";
  lab.policy = image::SignaturePolicy::kNone;
  auto sources = image::ImageSources::create({lab}, {});
  ASSERT_TRUE(sources.ok()) << sources.status();
  useSources(*sources);
  fetcher_.serve("https://lab.example/golden.cpio.gz", archive_);
  fetcher_.serve("https://other.example/golden.cpio.gz", archive_);
  auto op = done(images_->import({"golden", "https://lab.example/golden.cpio.gz", "", image::SignaturePolicy::kAuto, ""},
                                  adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(fetchesOf("https://lab.example/golden.cpio.gz.minisig"), 0u) << "policy none looks for no signature";
  op = done(images_->import({"other", "https://other.example/golden.cpio.gz", "", image::SignaturePolicy::kAuto, ""},
                            adminCaller()));
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition) << op.status;
}

// A signed source does not reuse a cached image nobody it trusts has signed: it fetches and checks the signature.
TEST_F(ImageManagerTest, SignedSourceDoesNotReuseUnsignedCache) {
  ASSERT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
  image::MinisignPublicKey vendor_key;
  vendor_key.key_id.fill(7);
  image::ImageSource vendor;
  vendor.prefix = "https://vendor.example/";
  vendor.trusted_keys = std::vector<image::MinisignPublicKey>{vendor_key};
  auto sources = image::ImageSources::create({vendor}, {});
  ASSERT_TRUE(sources.ok()) << sources.status();
  useSources(*sources);
  const std::string uri = "https://vendor.example/golden.cpio.gz";
  fetcher_.serve(uri, archive_);
  auto op = done(images_->import({"vendor", uri, image::toHex(image::sha256(archive_)), image::SignaturePolicy::kAuto, ""},
                                 adminCaller()));
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition) << op.status;
  EXPECT_THAT(op.status.message(), HasSubstr("source \"https://vendor.example/\" wants images signed"));
  EXPECT_EQ(images_->list()->size(), 1u);
}

// A wrong digest fails the operation with DATA_LOSS; no volume, no catalog entry, no staging.
TEST_F(ImageManagerTest, WrongDigestLeavesNothing) {
  auto r = req("golden");
  r.sha256 = std::string(64, '0');
  auto op = done(images_->import(r, adminCaller()));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kDataLoss) << op.status;
  EXPECT_TRUE(images_->list()->empty());
  EXPECT_TRUE((*storage_->pool(""))->list()->empty());
  EXPECT_TRUE(it::listTree(tmp_.sub("work")).empty());
}

// Bad names, URIs, digests and taken names fail the call at once.
TEST_F(ImageManagerTest, Prechecks) {
  auto bad = req("Bad Name");
  EXPECT_EQ(images_->import(bad, adminCaller()).status().code(), absl::StatusCode::kInvalidArgument);
  bad = req("x");
  bad.uri = "scp://h/x";
  EXPECT_EQ(images_->import(bad, adminCaller()).status().code(), absl::StatusCode::kInvalidArgument);
  bad = req("x");
  bad.sha256 = "abc";
  EXPECT_EQ(images_->import(bad, adminCaller()).status().code(), absl::StatusCode::kInvalidArgument);
  bad = req("x");
  bad.pool = "nope";
  EXPECT_EQ(images_->import(bad, adminCaller()).status().code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
  EXPECT_EQ(images_->import(req("golden"), adminCaller()).status().code(), absl::StatusCode::kAlreadyExists);
}

// Delete is refused while a clone exists, then removes the volume and the entry.
TEST_F(ImageManagerTest, DeleteRefusedWhileCloned) {
  ASSERT_EQ(done(images_->import(req("golden"), adminCaller())).state, OperationState::kSucceeded);
  ASSERT_EQ(done(storage_->clone("", "golden", "web1", 0, adminCaller())).state, OperationState::kSucceeded);
  auto refused = images_->remove("golden", adminCaller());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("web1"));
  ASSERT_EQ(done(storage_->remove("", "web1", adminCaller())).state, OperationState::kSucceeded);
  ASSERT_EQ(done(images_->remove("golden", adminCaller())).state, OperationState::kSucceeded);
  EXPECT_TRUE(images_->list()->empty());
  EXPECT_TRUE((*storage_->pool(""))->list()->empty());
  EXPECT_EQ(images_->remove("golden", adminCaller()).status().code(), absl::StatusCode::kNotFound);
}

// A raw ext4 image (made by mkfs.ext4 here) lands in the base volume byte for byte.
TEST_F(ImageManagerTest, RawImageIsCopiedIntoTheVolume) {
  const std::string raw = tmp_.sub("fs.img");
  auto made = runner_.run({"mkfs.ext4", "-q", "-F", "-L", "rawfs", raw, "8M"}, absl::Seconds(60));
  ASSERT_TRUE(made.ok() && made->exit_code == 0) << (made.ok() ? made->output : made.status().ToString());
  const std::string bytes = it::readAll(raw);
  fetcher_.serve("file:///srv/fs.img", bytes);
  auto op = done(images_->import({"rawfs", "file:///srv/fs.img", image::toHex(image::sha256(bytes)),
                                  image::SignaturePolicy::kDigest, ""},
                                 adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto all = images_->list();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].record.kind, "raw-ext");
  auto vol = (*storage_->pool(""))->get("rawfs");
  ASSERT_TRUE(vol.ok()) << vol.status();
  EXPECT_EQ(it::readAll(vol->path), bytes);
}

// Cancelling the operation stops the import; nothing is left in the pool, the catalog or the staging.
TEST_F(ImageManagerTest, CancelKeepsNothing) {
  fetcher_.blockAfter(kUri, 0);
  auto started = images_->import(req("golden"), adminCaller());
  ASSERT_TRUE(started.ok()) << started.status();
  fetcher_.waitBlocked();
  ASSERT_TRUE(ops_.cancel(started->id).ok());
  auto op = waitFinished(ops_, started->id);
  EXPECT_EQ(op.state, OperationState::kCancelled) << op.status;
  EXPECT_TRUE(images_->list()->empty());
  EXPECT_TRUE((*storage_->pool(""))->list()->empty());
  EXPECT_TRUE(it::listTree(tmp_.sub("work")).empty());
}

// Export packs a directory and stores it at the URI; bad sources fail the call at once.
TEST_F(ImageManagerTest, ExportDirectory) {
  const std::string dir = tmp_.sub("tree");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  it::writeFile(dir + "/motd", "hello\n");
  auto op = done(images_->exportImage({dir, "ftp://h/out.tar.zst", image::ExportFormat::kTarZst}, adminCaller()));
  ASSERT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.kind, "export-image");
  std::string stored;
  ASSERT_TRUE(fetcher_.fetch("ftp://h/out.tar.zst", [&](std::string_view c) {
    stored.append(c);
    return Status();
  }, {}).ok());
  EXPECT_THAT(op.message, HasSubstr(image::toHex(image::sha256(stored))));
  EXPECT_EQ(images_->exportImage({"relative", "ftp://h/x", image::ExportFormat::kCpioGz}, adminCaller()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(images_->exportImage({tmp_.sub("nope"), "ftp://h/x", image::ExportFormat::kCpioGz}, adminCaller()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(images_->exportImage({"vol:default/nope", "ftp://h/x", image::ExportFormat::kCpioGz}, adminCaller()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(images_->exportImage({dir, "scp://h/x", image::ExportFormat::kCpioGz}, adminCaller()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::provision
