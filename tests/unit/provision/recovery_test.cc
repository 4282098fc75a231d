#include "lib/provision/recovery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/provision/managers_fixture.h"

namespace xenctl::provision {
namespace {

using core::OperationState;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// The state a crash leaves: an operation stored as running with its journal,
// and what its steps had made (volumes in the fake pool "main", definitions
// and domains in the test hypervisor, which outlives the "restart" here as
// Xen does). recover() then starts a registry on the same store as a
// restarted daemon would, and runs Recovery.
class RecoveryTest : public ManagersFixture {
 protected:
  void SetUp() override {
    ManagersFixture::SetUp();
    ASSERT_TRUE(pools_[0]->create("golden", 16 * kMiB, std::nullopt).ok());
  }
  void interrupted(const std::string& kind, const std::string& target, std::vector<state::JournalStep> steps,
                   OperationState state = OperationState::kRunning) {
    core::OperationRecord rec;
    rec.id = "op-00000000000000aa";
    rec.kind = kind;
    rec.target = target;
    rec.request_id = "req-1";
    rec.state = state;
    ASSERT_TRUE(store_->putOperation(rec).ok());
    for (size_t i = 0; i < steps.size(); ++i) {
      steps[i].op_id = rec.id;
      steps[i].seq = static_cast<int64_t>(i);
      steps[i].kind = kind;
      ASSERT_TRUE(store_->putJournalStep(steps[i]).ok());
    }
  }
  std::vector<Recovery::Outcome> recover() {
    registry_ = std::make_unique<OperationRegistry>(clock_, store_.get(), OperationRegistry::Options{});
    EXPECT_TRUE(registry_->load().ok());
    auto out = Recovery(*store_, *registry_, *domains_, *storage_).run();
    EXPECT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(store_->listJournal()->empty());
    return out.ok() ? *out : std::vector<Recovery::Outcome>{};
  }
  core::OperationRecord op() { return *registry_->get("op-00000000000000aa"); }
  // web1 with its root cloned from golden; started unless define_only.
  std::string makeWeb1(bool define_only) {
    EXPECT_TRUE(pools_[0]->clone("golden", "web1-root", 0, {}).ok());
    core::DomainSpec spec;
    spec.name = "web1";
    spec.memory_mib = 64;
    spec.vcpus = 1;
    spec.disks = {{"vol:main/web1-root", "xvda", "w", ""}};
    auto made = domains_->createNow({spec, define_only, false}, 1000);
    EXPECT_TRUE(made.ok()) << made.status();
    return made.ok() ? made->uuid : "";
  }
  static state::JournalStep clone(bool done) {
    return {"", 0, "", "clone", {{"pool", "main"}, {"volume", "web1-root"}, {"source", "golden"}}, done};
  }
  static state::JournalStep define(const std::string& uuid, bool define_only) {
    return {"", 0, "", "define", {{"domain", "web1"}, {"uuid", uuid}, {"define_only", define_only ? "1" : "0"}}, false};
  }

  std::unique_ptr<OperationRegistry> registry_;
};

// A create interrupted after the hypervisor made the domain goes forward: the domain stays, running.
TEST_F(RecoveryTest, RunningDomainIsKept) {
  const std::string uuid = makeWeb1(false);
  interrupted("create-domain", "web1", {clone(true), define(uuid, false)});
  auto out = recover();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].forward);
  EXPECT_EQ(op().state, OperationState::kSucceeded);
  EXPECT_THAT(op().message, HasSubstr("finished at restart: domain 'web1' is running"));
  EXPECT_EQ(domains_->get("web1")->state, core::DomainState::kRunning);
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden", "main/web1-root"));
}

// A create interrupted after the definition, before the hypervisor's create, is undone: no definition, no clone.
TEST_F(RecoveryTest, DefinedButNotStartedIsUndone) {
  const std::string uuid = makeWeb1(true);
  interrupted("create-domain", "web1", {clone(true), define(uuid, false)});
  auto out = recover();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].forward);
  EXPECT_EQ(op().state, OperationState::kFailed);
  EXPECT_EQ(op().status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(op().message, HasSubstr("undone at restart"));
  EXPECT_THAT(op().message, HasSubstr("volume main/web1-root deleted"));
  EXPECT_TRUE(domainNames().empty());
  EXPECT_TRUE(store_->listDomains()->empty());
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
}

// define_only asks for the definition alone: once stored, the create is finished.
TEST_F(RecoveryTest, DefineOnlyWithItsDefinitionIsFinished) {
  const std::string uuid = makeWeb1(true);
  interrupted("create-domain", "web1", {clone(true), define(uuid, true)});
  recover();
  EXPECT_EQ(op().state, OperationState::kSucceeded);
  EXPECT_THAT(domainNames(), ElementsAre("web1"));
}

// Undo removes only what the step made: a volume of that name cloned from another origin, or a definition of another uuid, stays.
TEST_F(RecoveryTest, KeepsWhatTheStepDidNotMake) {
  ASSERT_TRUE(pools_[0]->create("other", 16 * kMiB, std::nullopt).ok());
  ASSERT_TRUE(pools_[0]->clone("other", "web1-root", 0, {}).ok());
  core::DomainSpec spec;
  spec.name = "web1";
  spec.memory_mib = 64;
  spec.vcpus = 1;
  ASSERT_TRUE(domains_->createNow({spec, true, false}, 1000).ok());
  interrupted("create-domain", "web1", {clone(false), define("another-uuid", false)});
  recover();
  EXPECT_EQ(op().state, OperationState::kFailed);
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden", "main/other", "main/web1-root"));
  EXPECT_THAT(domainNames(), ElementsAre("web1"));
}

// An import whose catalog row is stored is finished; without it the base volume goes.
TEST_F(RecoveryTest, ImportForwardWithItsCatalogRowElseBack) {
  ASSERT_TRUE(pools_[0]->create("base", 16 * kMiB, std::nullopt).ok());
  interrupted("import-image", "base",
              {{"", 0, "", "base-volume", {{"pool", "main"}, {"volume", "base"}}, true},
               {"", 0, "", "catalog", {{"image", "base"}}, false}});
  recover();
  EXPECT_EQ(op().state, OperationState::kFailed);
  EXPECT_THAT(op().message, HasSubstr("image 'base' was not yet in the catalog"));
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));

  ASSERT_TRUE(pools_[0]->create("base", 16 * kMiB, std::nullopt).ok());
  state::ImageRecord img;
  img.name = img.volume = "base";
  img.pool = "main";
  ASSERT_TRUE(store_->insertImage(img).ok());
  interrupted("import-image", "base",
              {{"", 0, "", "base-volume", {{"pool", "main"}, {"volume", "base"}}, true},
               {"", 0, "", "catalog", {{"image", "base"}}, false}});
  recover();
  EXPECT_EQ(op().state, OperationState::kSucceeded);
  EXPECT_THAT(volumeNames(), ElementsAre("main/base", "main/golden"));
}

// The orphan base volume of issue 14: an import killed between making its
// base volume and storing the catalog row (the step begun, the volume there,
// no row) leaves no volume once recovered, and the name imports again.
TEST_F(RecoveryTest, ImportKilledBeforeItsCatalogRowLeavesNoVolume) {
  ASSERT_TRUE(pools_[0]->create("base", 16 * kMiB, std::nullopt).ok());
  interrupted("import-image", "base",
              {{"", 0, "", "stage", {{"dir", "/nonexistent/op"}}, true},
               {"", 0, "", "base-volume", {{"pool", "main"}, {"volume", "base"}}, false}});
  recover();
  EXPECT_EQ(op().state, OperationState::kFailed);
  EXPECT_THAT(op().message, HasSubstr("volume main/base deleted"));
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
  EXPECT_TRUE(store_->listImages()->empty());
}

// An image deletion once begun is finished: no catalog row outlives its base volume.
TEST_F(RecoveryTest, ImageDeleteIsFinished) {
  state::ImageRecord img;
  img.name = "golden";
  img.volume = "golden";
  img.pool = "main";
  ASSERT_TRUE(store_->insertImage(img).ok());
  interrupted("delete-image", "golden",
              {{"", 0, "", "delete", {{"image", "golden"}, {"pool", "main"}, {"volume", "golden"}}, false}});
  recover();
  EXPECT_EQ(op().state, OperationState::kSucceeded);
  EXPECT_THAT(op().message, HasSubstr("image 'golden' removed from the catalog"));
  EXPECT_TRUE(volumeNames().empty());
  EXPECT_TRUE(store_->listImages()->empty());
}

// A deletion once begun is finished: the definition and the journaled volumes go.
TEST_F(RecoveryTest, DeleteIsFinished) {
  const std::string uuid = makeWeb1(false);
  interrupted("delete-domain", "web1",
              {{"", 0, "", "delete", {{"domain", "web1"}, {"uuid", uuid}, {"volumes", "vol:main/web1-root"}}, false}});
  recover();
  EXPECT_EQ(op().state, OperationState::kSucceeded);
  EXPECT_TRUE(domainNames().empty());
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
}

// A container file cut short while writing cannot be undone: the operation fails naming the trees to check.
TEST_F(RecoveryTest, ContainerCutShortNamesWhatToCheck) {
  interrupted("apply-container", "web1.cfg",
              {{"", 0, "", "write", {{"file", "web1.cfg"}, {"targets", "vol:main/golden"}}, false}});
  recover();
  EXPECT_EQ(op().state, OperationState::kFailed);
  EXPECT_THAT(op().message, HasSubstr("vol:main/golden may be partly changed"));
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden"));
}

// The journal of an operation that had finished is only cleared; nothing is undone.
TEST_F(RecoveryTest, FinishedOperationsJournalIsCleared) {
  ASSERT_TRUE(pools_[0]->clone("golden", "web1-root", 0, {}).ok());
  interrupted("create-domain", "web1", {clone(true)}, OperationState::kSucceeded);
  EXPECT_TRUE(recover().empty());
  EXPECT_EQ(op().state, OperationState::kSucceeded);
  EXPECT_THAT(volumeNames(), ElementsAre("main/golden", "main/web1-root"));
}

}  // namespace
}  // namespace xenctl::provision
