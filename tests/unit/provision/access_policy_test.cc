#include "lib/provision/access_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/provision/managers_fixture.h"

namespace xenctl::provision {
namespace {

using core::Role;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

core::Identity unixId(int64_t uid, int64_t gid = 100, std::vector<int64_t> groups = {}) {
  core::Identity id;
  id.kind = core::Identity::Kind::kUnix;
  id.uid = uid;
  id.gid = gid;
  id.groups = std::move(groups);
  return id;
}

core::Identity certId(std::string subject, std::vector<std::string> sans = {}) {
  core::Identity id;
  id.kind = core::Identity::Kind::kCertificate;
  id.subject = std::move(subject);
  id.sans = std::move(sans);
  return id;
}

core::OperationRecord opOn(std::string target, int64_t caller_uid) {
  core::OperationRecord op;
  op.id = "op-1";
  op.target = std::move(target);
  op.caller_uid = caller_uid;
  return op;
}

// Pool "main" with a golden base and two roots cloned from it: web1 (owned
// by uid 1001, granted to uid 1003) and web2 (owned by uid 1002); a clone
// of web1's root and an unattached volume.
class AccessPolicyTest : public ManagersFixture {
 protected:
  void SetUp() override {
    ManagersFixture::SetUp();
    auto* main = pools_[0];
    ASSERT_TRUE(main->create("golden", 16 * kMiB, std::nullopt).ok());
    ASSERT_TRUE(main->clone("golden", "web1-root", 0, {}).ok());
    ASSERT_TRUE(main->clone("golden", "web2-root", 0, {}).ok());
    ASSERT_TRUE(main->clone("web1-root", "web1-copy", 0, {}).ok());
    ASSERT_TRUE(main->create("spare", 8 * kMiB, std::nullopt).ok());
    define("web1", {{"vol:main/web1-root", "xvda", "w", ""}, {"vol:main/golden", "xvdb", "r", ""}});
    define("web2", {{"vol:main/web2-root", "xvda", "w", ""}});
    ASSERT_TRUE(domains_->changeAccess("web1", {std::string("uid:1001"), {"uid:1003"}, {}}).ok());
    ASSERT_TRUE(domains_->changeAccess("web2", {std::string("uid:1002"), {}, {}}).ok());
    policy_ = std::make_unique<AccessPolicy>(
        std::vector<RoleBinding>{{RoleBinding::Kind::kUid, 1001, "", Role::kOperator},
                                 {RoleBinding::Kind::kUid, 1002, "", Role::kOperator},
                                 {RoleBinding::Kind::kUid, 1003, "", Role::kOperator},
                                 {RoleBinding::Kind::kGid, 500, "", Role::kViewer},
                                 {RoleBinding::Kind::kGid, 600, "", Role::kAdmin},
                                 {RoleBinding::Kind::kSubject, -1, "CN=ci,O=example", Role::kOperator},
                                 {RoleBinding::Kind::kSubject, -1, "DNS:mon.example", Role::kViewer}},
        *domains_, *storage_, ops_);
  }
  Caller as(core::Identity id) {
    Caller c;
    c.identity = std::move(id);
    c.uid = c.identity.uid;
    c.role = policy_->roleOf(c.identity);
    return c;
  }
  std::unique_ptr<AccessPolicy> policy_;
};

// Root is admin; others get the highest role bound to their uid, gid,
// groups or certificate; nothing bound is no role (deny by default).
TEST_F(AccessPolicyTest, RolesComeFromBindingsAndRootIsAdmin) {
  EXPECT_EQ(policy_->roleOf(unixId(0, 0)), Role::kAdmin);
  EXPECT_EQ(policy_->roleOf(unixId(1001)), Role::kOperator);
  EXPECT_EQ(policy_->roleOf(unixId(2000, 500)), Role::kViewer);
  EXPECT_EQ(policy_->roleOf(unixId(2000, 100, {7, 500})), Role::kViewer);
  EXPECT_EQ(policy_->roleOf(unixId(1001, 100, {500, 600})), Role::kAdmin);  // the highest wins
  EXPECT_EQ(policy_->roleOf(unixId(2000)), Role::kNone);
  EXPECT_EQ(policy_->roleOf(certId("CN=ci,O=example")), Role::kOperator);
  EXPECT_EQ(policy_->roleOf(certId("CN=other", {"DNS:mon.example"})), Role::kViewer);
  EXPECT_EQ(policy_->roleOf(certId("CN=ci")), Role::kNone);  // exact subjects only
  EXPECT_EQ(policy_->roleOf(certId("uid:0")), Role::kNone);  // a subject is not a uid
  core::Identity unknown;
  EXPECT_EQ(policy_->roleOf(unknown), Role::kNone);
}

// An operator acts on the domains it owns or was granted, no other; a
// viewer sees every domain and acts on none.
TEST_F(AccessPolicyTest, OperatorsReachTheirDomainsOnly) {
  EXPECT_TRUE(policy_->mayActOnDomain(as(unixId(1001)), "web1"));
  EXPECT_TRUE(policy_->mayActOnDomain(as(unixId(1003)), "web1"));  // granted
  EXPECT_FALSE(policy_->mayActOnDomain(as(unixId(1002)), "web1"));
  EXPECT_FALSE(policy_->mayActOnDomain(as(unixId(1001)), "nosuch"));
  EXPECT_TRUE(policy_->mayActOnDomain(as(unixId(0, 0)), "web2"));
  EXPECT_FALSE(policy_->mayActOnDomain(as(unixId(2000, 500)), "web1"));
  EXPECT_TRUE(policy_->maySeeDomain(as(unixId(2000, 500)), "web1"));
  EXPECT_FALSE(policy_->maySeeDomain(as(unixId(1002)), "web1"));
  EXPECT_FALSE(policy_->maySeeDomain(as(unixId(2000)), "web1"));
}

// An operator uses its domains' writable volumes, their clones and
// snapshots, never a read-only base it merely attaches or another's volume.
TEST_F(AccessPolicyTest, OperatorsUseTheirDomainsVolumesAndTheirClones) {
  Caller op = as(unixId(1001));
  EXPECT_TRUE(policy_->mayUseVolume(op, "main", "web1-root"));
  EXPECT_TRUE(policy_->mayUseVolume(op, "", "web1-root"));  // the default pool
  EXPECT_TRUE(policy_->mayUseVolume(op, "main", "web1-root@snap"));
  EXPECT_TRUE(policy_->mayUseVolume(op, "main", "web1-copy"));
  EXPECT_FALSE(policy_->mayUseVolume(op, "main", "golden"));
  EXPECT_FALSE(policy_->mayUseVolume(op, "main", "web2-root"));
  EXPECT_FALSE(policy_->mayUseVolume(op, "main", "spare"));
  EXPECT_FALSE(policy_->mayUseVolume(op, "nosuch", "web1-root"));
  EXPECT_TRUE(policy_->mayUseVolume(as(unixId(1002)), "main", "web2-root"));
  EXPECT_FALSE(policy_->mayUseVolume(as(unixId(2000, 500)), "main", "web1-root"));
  EXPECT_TRUE(policy_->maySeeVolume(as(unixId(2000, 500)), "main", "spare"));
}

// A refusal names the identity, its role, the method, the target and what
// is needed.
TEST_F(AccessPolicyTest, RefusalsSayWhoWhatAndWhy) {
  const Rule lifecycle{Role::kOperator, Scope::kDomain};
  EXPECT_TRUE(policy_->authorize(as(unixId(1001)), "StartDomain", lifecycle, {"web1", ""}).ok());
  Status st = policy_->authorize(as(unixId(1002)), "StartDomain", lifecycle, {"web1", ""});
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("uid:1002 (role operator) may not call StartDomain on domain 'web1'"));
  st = policy_->authorize(as(unixId(2000, 500)), "StartDomain", lifecycle, {"web1", ""});
  EXPECT_THAT(st.message(), HasSubstr("uid:2000 (role viewer)"));
  EXPECT_THAT(st.message(), HasSubstr("needs the operator role"));
  st = policy_->authorize(as(certId("CN=ci,O=example")), "ImportImage", {Role::kAdmin, Scope::kHost}, {"debian", ""});
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("cert:CN=ci,O=example (role operator) may not call ImportImage"));
  EXPECT_THAT(st.message(), HasSubstr("needs the admin role"));
  EXPECT_EQ(policy_->authorize(as(unixId(2000)), "ListDomains", {Role::kViewer, Scope::kHost}, {}).code(),
            absl::StatusCode::kPermissionDenied);
}

// Operations: an operator sees those it started and those on its domains
// and volumes; unknown ids pass to the registry's NOT_FOUND.
TEST_F(AccessPolicyTest, OperatorsSeeTheirOperations) {
  core::OperationRecord mine = opOn("web2", 1001);
  core::OperationRecord on_web1 = opOn("web1", 7);
  core::OperationRecord on_vol = opOn("main/web1-copy", 7);
  core::OperationRecord other = opOn("web2", 7);
  Caller op = as(unixId(1001));
  EXPECT_TRUE(policy_->maySeeOperation(op, mine));
  EXPECT_TRUE(policy_->maySeeOperation(op, on_web1));
  EXPECT_TRUE(policy_->maySeeOperation(op, on_vol));
  EXPECT_FALSE(policy_->maySeeOperation(op, other));
  EXPECT_FALSE(policy_->maySeeOperation(as(certId("CN=ci,O=example")), other));  // uid -1 is nobody's
  EXPECT_TRUE(policy_->authorize(op, "GetOperation", {Role::kViewer, Scope::kOperation}, {"op-nosuch", ""}).ok());
}

// A certificate operator sees the operation it started, before the domain
// it creates (and its right on it) exists: its vm-create over mutual TLS
// watches that operation; another certificate does not see it.
TEST_F(AccessPolicyTest, CertificateOperatorsSeeOperationsTheyStarted) {
  Caller ci = as(certId("CN=ci,O=example"));
  auto started = ops_.start({"create-domain", "web9", "", -1, ci.key()}, [](OperationContext&) { return absl::OkStatus(); });
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_TRUE(policy_->maySeeOperation(ci, *started));
  EXPECT_TRUE(policy_->authorize(ci, "WatchOperation", {Role::kViewer, Scope::kOperation}, {started->id, ""}).ok());
  Caller other = as(certId("CN=other,O=example"));
  other.role = Role::kOperator;
  EXPECT_FALSE(policy_->maySeeOperation(other, *started));
  EXPECT_FALSE(policy_->maySeeOperation(as(unixId(1001)), *started));
}

// Ownership and grants change at once, are checked as principals, and
// keep the grants sorted and unique.
TEST_F(AccessPolicyTest, AccessChangesAreValidated) {
  auto v = domains_->changeAccess("web1", {std::nullopt, {"uid:1005", "uid:1003"}, {"uid:1004"}});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->owner, "uid:1001");
  EXPECT_EQ(v->grants, (std::vector<std::string>{"uid:1003", "uid:1005"}));
  v = domains_->changeAccess("web1", {std::nullopt, {}, {"uid:1003"}});
  EXPECT_EQ(v->grants, (std::vector<std::string>{"uid:1005"}));
  EXPECT_EQ(domains_->changeAccess("web1", {std::nullopt, {"alice"}, {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(domains_->changeAccess("web1", {std::string("uid:-1"), {}, {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(domains_->changeAccess("nosuch", {std::nullopt, {"uid:1"}, {}}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(domains_->get("web1")->grants, (std::vector<std::string>{"uid:1005"}));
}

// The creator of a domain becomes its owner, as its identity.
TEST_F(AccessPolicyTest, CreatorOwns) {
  Caller c = as(certId("CN=ci,O=example"));
  core::DomainSpec spec;
  spec.name = "web3";
  spec.memory_mib = 64;
  spec.vcpus = 1;
  done(domains_->create({spec, true, false}, c));
  EXPECT_EQ(domains_->get("web3")->owner, "cert:CN=ci,O=example");
  EXPECT_TRUE(policy_->mayActOnDomain(c, "web3"));
  EXPECT_EQ(domains_->get("web1")->owner, "uid:1001");
}

}  // namespace
}  // namespace xenctl::provision

namespace xenctl::provision {
namespace {

// An operator's new domain may name only volumes it may use; an admin's
// any. Changing access: the owner grants, only an admin gives away.
TEST_F(AccessPolicyTest, OperatorsCreateOnTheirVolumesAndOwnersGrant) {
  core::DomainSpec spec;
  spec.name = "web9";
  spec.disks = {{"vol:main/web1-copy", "xvda", "w", ""}, {"/srv/iso/x.iso", "xvdc", "r", ""}};
  EXPECT_TRUE(policy_->authorizeSpec(as(unixId(1001)), spec).ok());
  spec.disks.push_back({"vol:main/web2-root", "xvdb", "r", ""});
  Status st = policy_->authorizeSpec(as(unixId(1001)), spec);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("vol:main/web2-root (xvdb)"));
  EXPECT_TRUE(policy_->authorizeSpec(as(unixId(0, 0)), spec).ok());

  EXPECT_TRUE(policy_->authorizeAccessChange(as(unixId(1001)), "web1", false).ok());
  EXPECT_EQ(policy_->authorizeAccessChange(as(unixId(1001)), "web1", true).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(policy_->authorizeAccessChange(as(unixId(1003)), "web1", false).code(),  // a grantee
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(policy_->authorizeAccessChange(as(unixId(1002)), "web1", false).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(policy_->authorizeAccessChange(as(unixId(0, 0)), "web1", true).ok());
}

}  // namespace
}  // namespace xenctl::provision
