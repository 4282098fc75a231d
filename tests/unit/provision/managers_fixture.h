// A daemon's managers over in-memory pools, for the tests of the use cases
// that string them together (the fork, the diff).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/provision/domain_manager.h"
#include "lib/provision/storage_manager.h"
#include "lib/testhv/test_hypervisor.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_volumes.h"
#include "tests/unit/provision/test_util.h"

namespace xenctl::provision {

/// StorageManager over one FakeVolumes per name in `pools()` (each can be
/// made to fail a clone or a remove), DomainManager over a test hypervisor
/// with 1 GiB, and the operation registry, loaded in SetUp.
class ManagersFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::unique_ptr<core::VolumeManager>> pools;
    for (const std::string& name : poolNames()) {
      auto pool = std::make_unique<fakes::FakeVolumes>(name);
      pools_.push_back(pool.get());
      pools.push_back(std::move(pool));
    }
    storage_ = std::make_unique<StorageManager>(std::move(pools), ops_, usage_);
    domains_ = std::make_unique<DomainManager>(hv_, *storage_, usage_, *store_, ops_, bus_, clock_);
    ASSERT_TRUE(domains_->load().ok());
  }
  virtual std::vector<std::string> poolNames() const { return {"main"}; }

  /// A stopped domain of 64 MiB with these disks.
  void define(const std::string& name, std::vector<core::DiskSpec> disks, std::vector<core::VifSpec> vifs = {}) {
    core::DomainSpec spec;
    spec.name = name;
    spec.memory_mib = 64;
    spec.vcpus = 1;
    spec.disks = std::move(disks);
    spec.vifs = std::move(vifs);
    auto defined = domains_->createNow({spec, /*define_only=*/true, false}, 1000);
    ASSERT_TRUE(defined.ok()) << defined.status();
  }
  core::OperationRecord done(const Result<core::OperationRecord>& r) {
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? waitFinished(ops_, r->id) : core::OperationRecord{};
  }
  /// "POOL/NAME" of every volume, sorted.
  std::vector<std::string> volumeNames() {
    auto vols = storage_->list("");
    EXPECT_TRUE(vols.ok()) << vols.status();
    std::vector<std::string> names;
    if (vols.ok())
      for (const auto& v : *vols) names.push_back(absl::StrCat(v.pool, "/", v.name));
    std::sort(names.begin(), names.end());
    return names;
  }
  /// Every domain's name, ours and foreign.
  std::vector<std::string> domainNames() {
    auto views = domains_->list(true);
    EXPECT_TRUE(views.ok()) << views.status();
    std::vector<std::string> names;
    if (views.ok())
      for (const auto& v : *views) names.push_back(v.spec.name);
    return names;
  }

  fakes::FakeClock clock_;
  std::unique_ptr<state::Store> store_ = *state::Store::open(":memory:");
  OperationRegistry ops_{clock_, nullptr, OperationRegistry::Options{}};
  EventBus bus_;
  testhv::TestHypervisor hv_{testhv::TestHypervisor::Options{8, 1024, "t"}};
  VolumeUsage usage_;
  std::vector<fakes::FakeVolumes*> pools_;  ///< in poolNames() order
  std::unique_ptr<StorageManager> storage_;
  std::unique_ptr<DomainManager> domains_;
  Caller caller_ = adminCaller("", 1000);
};

}  // namespace xenctl::provision
