#include "daemon/domain_lister.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/convert.h"
#include "daemon/list_page.h"
#include "tests/unit/provision/managers_fixture.h"

namespace xenctl::daemon {
namespace {

using provision::Caller;
using provision::DomainView;

// ListDomains as it was before DomainLister: each domain converted by
// toProto() into a message of the answer, at every call. The oracle: the
// lister's bytes must be this answer's serialization.
v1::ListDomainsResponse builtAnswer(provision::DomainManager& domains, provision::AccessPolicy& access,
                                    const Caller& caller, const v1::ListDomainsRequest& req, size_t max_bytes) {
  v1::ListDomainsResponse out;
  auto views = domains.list(req.include_foreign());
  EXPECT_TRUE(views.ok()) << views.status();
  if (!views.ok()) return out;
  auto before = [](const DomainView* a, const DomainView* b) {
    return a->foreign != b->foreign ? b->foreign : a->spec.name < b->spec.name;
  };
  const std::string& token = req.page_token();
  const bool token_foreign = absl::StartsWith(token, "1:");
  const std::string_view token_name = token.size() >= 2 ? std::string_view(token).substr(2) : std::string_view();
  auto afterToken = [&](const DomainView& v) {
    if (token.empty()) return true;
    if (v.foreign != token_foreign) return v.foreign;
    return std::string_view(v.spec.name) > token_name;
  };
  std::vector<const DomainView*> order;
  for (const auto& v : *views)
    if (afterToken(v) && access.maySeeDomain(caller, v.spec.name)) order.push_back(&v);
  std::sort(order.begin(), order.end(), before);
  size_t bytes = 0;
  const DomainView* last = nullptr;
  for (const DomainView* v : order) {
    v1::Domain* d = out.add_domains();
    toProto(*v, d);
    size_t size = d->ByteSizeLong();
    if (size > max_bytes / 4) {
      d->mutable_spec()->clear_disks();
      d->mutable_spec()->clear_vifs();
      d->mutable_spec()->clear_bootloader_args();
      d->mutable_spec()->clear_cmdline();
      d->set_state_reason("its spec is too large to list; delete the domain and define it again within the limits");
      size = d->ByteSizeLong();
    }
    const size_t n = size + kListElementOverhead;
    if (bytes + n > max_bytes && out.domains_size() > 1) {
      out.mutable_domains()->RemoveLast();
      out.set_next_page_token(absl::StrCat(last->foreign ? "1:" : "0:", last->spec.name));
      break;
    }
    bytes += n;
    last = v;
  }
  return out;
}

constexpr size_t kPage = (size_t{4} << 20) - (64 << 10);  // services.cc's

// Domains of ours and foreign ones on the test hypervisor; an operator (uid
// 1001) and a viewer (gid 500) besides the admin.
class DomainListerTest : public provision::ManagersFixture {
 protected:
  void SetUp() override {
    ManagersFixture::SetUp();
    access_ = std::make_unique<provision::AccessPolicy>(
        std::vector<provision::RoleBinding>{{provision::RoleBinding::Kind::kUid, 1001, "", core::Role::kOperator},
                                            {provision::RoleBinding::Kind::kGid, 500, "", core::Role::kViewer}},
        *domains_, *storage_, ops_);
    kept_ = std::make_unique<DomainLister>(*domains_, *access_, kPage);
  }
  Caller as(int64_t uid, int64_t gid) {
    Caller c;
    c.identity.kind = core::Identity::Kind::kUnix;
    c.identity.uid = uid;
    c.identity.gid = gid;
    c.uid = uid;
    c.role = access_->roleOf(c.identity);
    return c;
  }
  core::DomainSpec spec(const std::string& name, uint64_t mem = 64) { return provision::smallSpec(name, mem); }
  // A stopped domain of ours with these disks, owned by uid 1000.
  void defineDomain(const std::string& name, std::vector<core::DiskSpec> disks) {
    core::DomainSpec s = spec(name);
    s.disks = std::move(disks);
    auto defined = domains_->createNow({s, /*define_only=*/true, false}, 1000);
    ASSERT_TRUE(defined.ok()) << defined.status();
  }
  // Runs a change of the domain manager that returns an operation to its end.
  void run(const Result<core::OperationRecord>& r) {
    const core::OperationRecord op = done(r);
    ASSERT_EQ(op.state, core::OperationState::kSucceeded) << op.status;
  }
  std::string uuidOf(const std::string& name) {
    auto v = domains_->get(name);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? v->spec.uuid : "";
  }
  // A domain in the hypervisor that xenctld did not define.
  void foreign(const std::string& name) {
    core::DomainSpec s = spec(name);
    s.uuid = core::newUuid();
    auto normal = core::normalizeSpec(s);
    ASSERT_TRUE(normal.ok()) << normal.status();
    ASSERT_TRUE(hv_.createDomain(*normal, false).ok());
  }
  // The lister's answer for `req`, checked against the built one: the same
  // bytes from the lister kept since SetUp (its encodings from the calls
  // before) and from a new one (none kept). Returns it decoded.
  v1::ListDomainsResponse listed(const Caller& caller, const v1::ListDomainsRequest& req, size_t page = kPage,
                                 DomainLister* lister = nullptr) {
    DomainLister fresh(*domains_, *access_, page);
    DomainLister& kept = lister ? *lister : *kept_;
    const v1::ListDomainsResponse built = builtAnswer(*domains_, *access_, caller, req, page);
    auto from_kept = kept.list(caller, req);
    auto from_fresh = fresh.list(caller, req);
    EXPECT_TRUE(from_kept.ok()) << from_kept.status();
    EXPECT_TRUE(from_fresh.ok()) << from_fresh.status();
    if (!from_kept.ok() || !from_fresh.ok()) return built;
    v1::ListDomainsResponse decoded;
    EXPECT_TRUE(decoded.ParseFromString(*from_kept));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(decoded, built))
        << "listed:\n" << decoded.DebugString() << "built:\n" << built.DebugString();
    EXPECT_EQ(*from_kept, built.SerializeAsString());
    EXPECT_EQ(*from_kept, *from_fresh);
    return decoded;
  }
  v1::ListDomainsResponse listedAll(bool include_foreign = true) {
    v1::ListDomainsRequest req;
    req.set_include_foreign(include_foreign);
    return listed(caller_, req);
  }
  static std::vector<std::string> names(const v1::ListDomainsResponse& r) {
    std::vector<std::string> out;
    for (const auto& d : r.domains()) out.push_back(d.spec().name());
    return out;
  }

  std::unique_ptr<provision::AccessPolicy> access_;
  std::unique_ptr<DomainLister> kept_;
};

// After each way the API and the hypervisor change a domain, the answer
// from kept encodings is the one built anew: no spec or state is stale.
TEST_F(DomainListerTest, KeptEncodingsFollowEveryChange) {
  defineDomain("web1", {});
  defineDomain("web2", {{"/srv/web2.img", "xvda", "w", ""}});
  run(domains_->create({spec("web3"), false, true}, caller_));  // created paused
  foreign("xl1");
  EXPECT_EQ(names(listedAll()), (std::vector<std::string>{"web1", "web2", "web3", "xl1"}));
  EXPECT_EQ(kept_->usage().domains, 3u) << "ours are kept, foreign ones are not";
  EXPECT_EQ(names(listedAll(false)), (std::vector<std::string>{"web1", "web2", "web3"}));

  run(domains_->start("web1", false, caller_));
  EXPECT_EQ(listedAll().domains(0).state(), v1::DOMAIN_STATE_RUNNING);
  run(domains_->unpause("web3", caller_));
  listedAll();
  run(domains_->pause("web3", caller_));
  EXPECT_EQ(listedAll().domains(2).state(), v1::DOMAIN_STATE_PAUSED);
  // Live and kept in the spec for a running one; in the spec only for a stopped one.
  run(domains_->setResources("web1", {2, 128}, caller_));
  EXPECT_EQ(listedAll().domains(0).spec().vcpus(), 2u);
  run(domains_->setResources("web2", {3, 256}, caller_));
  EXPECT_EQ(listedAll().domains(1).spec().memory_mib(), 256u);
  // Who owns it and who was granted it are in the definition.
  ASSERT_TRUE(domains_->changeAccess("web2", {std::string("uid:1001"), {"uid:1003"}, {}}).ok());
  EXPECT_EQ(listedAll().domains(1).owner(), "uid:1001");
  ASSERT_TRUE(domains_->changeAccess("web2", {std::nullopt, {}, {"uid:1003"}}).ok());
  EXPECT_EQ(listedAll().domains(1).grants_size(), 0);

  run(domains_->destroy("web1", caller_));
  EXPECT_EQ(listedAll().domains(0).state(), v1::DOMAIN_STATE_STOPPED);
  // Seen by the hypervisor's watcher, not asked for: a crash (on_crash
  // destroy, with its stop reason), a guest's own power-off.
  ASSERT_TRUE(hv_.crashDomain(uuidOf("web3")).ok());
  const v1::Domain crashed = listedAll().domains(2);
  EXPECT_EQ(crashed.state(), v1::DOMAIN_STATE_STOPPED);
  run(domains_->start("web3", false, caller_));
  EXPECT_EQ(listedAll().domains(2).state(), v1::DOMAIN_STATE_RUNNING);
  ASSERT_TRUE(hv_.shutdownDomain(uuidOf("web3")).ok());
  EXPECT_EQ(listedAll().domains(2).state(), v1::DOMAIN_STATE_STOPPED);
  foreign("xl0");
  EXPECT_EQ(names(listedAll()), (std::vector<std::string>{"web1", "web2", "web3", "xl0", "xl1"}));

  // Deleted, then defined again under its name with another spec: the
  // encoding of the first is neither shown nor kept.
  run(domains_->remove("web2", false, false, caller_));
  EXPECT_EQ(names(listedAll()), (std::vector<std::string>{"web1", "web3", "xl0", "xl1"}));
  EXPECT_EQ(kept_->usage().domains, 2u) << "a deleted domain's encoding is dropped";
  core::DomainSpec again = spec("web2", 96);
  again.disks = {{"/srv/other.img", "xvdb", "r", ""}};
  run(domains_->create({again, true, false}, caller_));
  const v1::Domain redefined = listedAll().domains(1);
  EXPECT_EQ(redefined.spec().memory_mib(), 96u);
  ASSERT_EQ(redefined.spec().disks_size(), 1);
  EXPECT_EQ(redefined.spec().disks(0).target(), "/srv/other.img");
  run(domains_->remove("web1", true, false, caller_));
  run(domains_->remove("web3", true, false, caller_));
  EXPECT_EQ(names(listedAll()), (std::vector<std::string>{"web2", "xl0", "xl1"}));
}

// Pages are the ones the built answer had: the same cut, the same tokens,
// through ours and then the foreign ones, each domain on one page.
TEST_F(DomainListerTest, PagesAsTheBuiltAnswer) {
  std::vector<std::string> all;
  for (int i = 0; i < 24; ++i) {
    std::vector<core::DiskSpec> disks;
    for (int d = 0; d < i % 4; ++d)
      disks.push_back({absl::StrCat("/srv/d", i, "-", d, "/", std::string(5 * (i % 12), 'x')),
                       std::string("xvd") + char('a' + d), "w", ""});
    all.push_back(absl::StrCat("dom", i < 10 ? "0" : "", i));
    defineDomain(all.back(), disks);
  }
  run(domains_->start("dom03", false, caller_));
  foreign("xl1");
  foreign("xl2");
  foreign("xl3");
  for (const char* f : {"xl1", "xl2", "xl3"}) all.push_back(f);
  constexpr size_t kSmallPage = 1600;
  DomainLister paged(*domains_, *access_, kSmallPage);
  for (int pass = 0; pass < 2; ++pass) {  // the second from kept encodings
    v1::ListDomainsRequest req;
    req.set_include_foreign(true);
    std::vector<std::string> seen;
    int pages = 0;
    do {
      const v1::ListDomainsResponse page = listed(caller_, req, kSmallPage, &paged);
      ASSERT_GT(page.domains_size(), 0);
      for (const auto& d : page.domains()) seen.push_back(d.spec().name());
      req.set_page_token(page.next_page_token());
      ASSERT_LT(++pages, 20);
    } while (!req.page_token().empty());
    EXPECT_GE(pages, 3);
    EXPECT_EQ(seen, all);
  }
  // A token into the foreign ones, and one past everything.
  v1::ListDomainsRequest req;
  req.set_include_foreign(true);
  req.set_page_token("1:xl1");
  EXPECT_EQ(names(listed(caller_, req, kSmallPage, &paged)), (std::vector<std::string>{"xl2", "xl3"}));
  req.set_page_token("1:zz");
  EXPECT_EQ(listed(caller_, req, kSmallPage, &paged).domains_size(), 0);
}

// A caller sees only the domains it may: an operator its own and those it
// was granted, a viewer all of them.
TEST_F(DomainListerTest, CallersSeeOnlyWhatTheyMay) {
  defineDomain("a1", {});
  defineDomain("a2", {});
  defineDomain("a3", {});
  foreign("xl1");
  ASSERT_TRUE(domains_->changeAccess("a1", {std::string("uid:1001"), {}, {}}).ok());
  ASSERT_TRUE(domains_->changeAccess("a3", {std::string("uid:2000"), {"uid:1001"}, {}}).ok());
  v1::ListDomainsRequest req;
  req.set_include_foreign(true);
  EXPECT_EQ(names(listedAll()), (std::vector<std::string>{"a1", "a2", "a3", "xl1"}));  // kept: all
  EXPECT_EQ(names(listed(as(1001, 1001), req)), (std::vector<std::string>{"a1", "a3"}));
  EXPECT_EQ(names(listed(as(1002, 500), req)), (std::vector<std::string>{"a1", "a2", "a3", "xl1"}));
  EXPECT_EQ(listed(as(1002, 1002), req).domains_size(), 0);
  ASSERT_TRUE(domains_->changeAccess("a3", {std::nullopt, {}, {"uid:1001"}}).ok());
  EXPECT_EQ(names(listed(as(1001, 1001), req)), (std::vector<std::string>{"a1"}));
}

// A domain over a quarter of a page is listed without its spec's lists and
// says why, as before; the others whole.
TEST_F(DomainListerTest, TrimsADomainTooLargeToList) {
  std::vector<core::DiskSpec> disks;
  for (int d = 0; d < 8; ++d) disks.push_back({absl::StrCat("/srv/big/", d, std::string(300, 'y')), std::string("xvd") + char('a' + d), "w", ""});
  defineDomain("big", disks);
  defineDomain("small", {});
  constexpr size_t kSmallPage = 8000;  // a quarter: 2000 bytes, less than big's 8 disks
  DomainLister paged(*domains_, *access_, kSmallPage);
  v1::ListDomainsRequest req;
  for (int pass = 0; pass < 2; ++pass) {
    const v1::ListDomainsResponse r = listed(caller_, req, kSmallPage, &paged);
    ASSERT_EQ(r.domains_size(), 2);
    EXPECT_EQ(r.domains(0).spec().disks_size(), 0);
    EXPECT_TRUE(absl::StrContains(r.domains(0).state_reason(), "too large to list"));
    EXPECT_EQ(r.domains(1).state_reason(), "");
  }
}

}  // namespace
}  // namespace xenctl::daemon
