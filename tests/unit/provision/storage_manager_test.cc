#include "lib/provision/storage_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "lib/storage/dir_volumes.h"
#include "tests/fakes/fake_clock.h"
#include "tests/unit/provision/test_util.h"
#include "tests/unit/storage/storage_test_util.h"

namespace xenctl::provision {
namespace {

using core::OperationState;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

// Two dir pools in a temp dir under one registry.
class StorageManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::unique_ptr<core::VolumeManager>> pools;
    for (const char* name : {"default", "fast"}) {
      auto p = storage::DirVolumes::open(name, tmp_.path() + "/" + name, clock_);
      ASSERT_TRUE(p.ok()) << p.status();
      pools.push_back(*std::move(p));
    }
    storage_ = std::make_unique<StorageManager>(std::move(pools), ops_, usage_);
  }
  core::OperationRecord done(const Result<core::OperationRecord>& r) {
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? waitFinished(ops_, r->id) : core::OperationRecord{};
  }
  Caller req(const std::string& id = "") { return adminCaller(id, 1000); }

  storage::testing::TempDir tmp_;
  fakes::FakeClock clock_;
  OperationRegistry ops_{clock_, nullptr, OperationRegistry::Options{}};
  VolumeUsage usage_;
  std::unique_ptr<StorageManager> storage_;
};

// Each change is an operation on POOL/NAME; a request without a pool goes to the first one.
TEST_F(StorageManagerTest, ChangesRunAsOperations) {
  auto op = done(storage_->create({"", "base", 16 * kMiB, std::nullopt}, req()));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  EXPECT_EQ(op.kind, "create-volume");
  EXPECT_EQ(op.target, "default/base");
  op = done(storage_->clone("default", "base", "web1", 0, req()));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  op = done(storage_->snapshot("default", "web1", "s1", req()));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  op = done(storage_->rollback("default", "web1", "s1", req()));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  op = done(storage_->resize("default", "web1", 32 * kMiB, req()));
  EXPECT_EQ(op.state, OperationState::kSucceeded) << op.status;
  auto vols = storage_->list("");
  ASSERT_TRUE(vols.ok());
  ASSERT_EQ(vols->size(), 3u);
  EXPECT_EQ((*vols)[2].name, "web1@s1");
  EXPECT_EQ((*vols)[1].size_bytes, 32 * kMiB);
  EXPECT_TRUE(storage_->list("fast")->empty());
  ASSERT_EQ(storage_->pools()->size(), 2u);
}

// A retry with the same request_id returns the first operation and does no work twice.
TEST_F(StorageManagerTest, RequestIdDeduplicates) {
  auto first = done(storage_->create({"", "base", 16 * kMiB, std::nullopt}, req("r-1")));
  auto again = storage_->create({"", "base", 16 * kMiB, std::nullopt}, req("r-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, first.id);
  EXPECT_EQ(again->state, OperationState::kSucceeded);
}

// What can be checked at once fails the call, with the right code, and starts no operation.
TEST_F(StorageManagerTest, PrechecksFailTheCall) {
  done(storage_->create({"", "base", 16 * kMiB, std::nullopt}, req()));
  const size_t ops_before = ops_.list("", false, 100).size();
  EXPECT_EQ(storage_->create({"nope", "x", 16 * kMiB, std::nullopt}, req()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(storage_->create({"nope", "x", 16 * kMiB, std::nullopt}, req()).status().message(),
              HasSubstr("default, fast"));
  EXPECT_EQ(storage_->create({"", "base", 16 * kMiB, std::nullopt}, req()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(storage_->create({"", "Bad", 16 * kMiB, std::nullopt}, req()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(storage_->clone("", "missing", "web1", 0, req()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(storage_->clone("", "base", "web1", kMiB, req()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(storage_->resize("", "base", kMiB, req()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(storage_->rollback("", "base", "none", req()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(storage_->remove("", "missing", req()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_.list("", false, 100).size(), ops_before);
}

// A running domain's volume can be neither deleted, rolled back nor resized.
TEST_F(StorageManagerTest, VolumeInUseIsKept) {
  done(storage_->create({"", "web1", 16 * kMiB, std::nullopt}, req()));
  done(storage_->snapshot("", "web1", "s1", req()));
  core::DomainSpec dom1;
  dom1.name = "dom1";
  dom1.disks = {{"vol:default/web1", "xvda", "w", ""}};
  usage_.record(dom1, 7);
  auto listed = storage_->list("");
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (const auto& v : *listed) EXPECT_EQ(v.used_by, v.name == "web1" ? "dom1" : "") << v.name;
  auto del = storage_->remove("", "web1", req());
  EXPECT_EQ(del.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(del.status().message(), HasSubstr("dom1"));
  EXPECT_EQ(storage_->rollback("", "web1", "s1", req()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(storage_->resize("", "web1", 32 * kMiB, req()).status().code(), absl::StatusCode::kFailedPrecondition);
  auto snap = done(storage_->remove("", "web1@s1", req()));
  EXPECT_EQ(snap.state, OperationState::kSucceeded) << snap.status;
}

// A failure found by the backend fails the operation with its code.
TEST_F(StorageManagerTest, BackendRefusalFailsTheOperation) {
  done(storage_->create({"", "base", 16 * kMiB, std::nullopt}, req()));
  done(storage_->clone("", "base", "web1", 0, req()));
  auto op = done(storage_->remove("", "base", req()));
  EXPECT_EQ(op.state, OperationState::kFailed);
  EXPECT_EQ(op.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(op.status.message(), HasSubstr("web1"));
}

// cloneNow, resizeNow and removeNow work at once, start no operation, and
// keep a running domain's volume as the operations do.
TEST_F(StorageManagerTest, NowMethodsStartNoOperation) {
  done(storage_->create({"", "base", 16 * kMiB, std::nullopt}, req()));
  const size_t ops_before = ops_.list("", false, 100).size();
  auto c = storage_->cloneNow("default", "base", "web1", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->origin, "base");
  EXPECT_EQ(storage_->cloneNow("nope", "base", "web2", 0).status().code(), absl::StatusCode::kNotFound);
  core::DomainSpec dom1;
  dom1.name = "dom1";
  dom1.disks = {{"vol:default/web1", "xvda", "w", ""}};
  usage_.record(dom1, 3);
  EXPECT_EQ(storage_->resizeNow("default", "web1", 32 * kMiB).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(storage_->removeNow("default", "web1").code(), absl::StatusCode::kFailedPrecondition);
  usage_.release("dom1");
  auto grown = storage_->resizeNow("default", "web1", 32 * kMiB);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(grown->size_bytes, 32 * kMiB);
  EXPECT_EQ(storage_->removeNow("default", "base").code(), absl::StatusCode::kFailedPrecondition);  // cloned
  EXPECT_TRUE(storage_->removeNow("default", "web1").ok());
  EXPECT_TRUE(storage_->removeNow("default", "base").ok());
  EXPECT_EQ(ops_.list("", false, 100).size(), ops_before);
}

}  // namespace
}  // namespace xenctl::provision
