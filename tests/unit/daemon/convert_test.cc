// The daemon's translation of a CreateDomain with a root into the Provisioner's request.
#include "daemon/convert.h"

#include <gtest/gtest.h>

namespace xenctl::daemon {
namespace {

// Root, identity choice and every typed customization arrive as the Provisioner takes them.
TEST(ProvisionRequestTest, CarriesRootAndCustomizations) {
  v1::CreateDomainRequest req;
  req.mutable_root()->set_image("debian-12");
  req.mutable_root()->set_pool("thin");
  req.mutable_root()->set_size_mib(8192);
  req.mutable_root()->set_vdev("xvdb");
  req.set_keep_identity(true);
  req.set_paused(true);
  req.add_customizations()->set_hostname("web1");
  req.add_customizations()->mutable_file()->set_path("/etc/motd");
  auto* keys = req.add_customizations()->mutable_ssh_authorized_keys();
  keys->add_keys("ssh-ed25519 AAAA x@y");
  auto* net = req.add_customizations()->mutable_network();
  net->set_vif(1);
  net->set_gateway("10.0.0.1");
  net->add_dns("10.0.0.53");
  core::DomainSpec spec;
  spec.name = "web1";
  auto r = provisionRequest(req, spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->spec.name, "web1");
  EXPECT_EQ(r->image, "debian-12");
  EXPECT_EQ(r->pool, "thin");
  EXPECT_EQ(r->root_size_bytes, uint64_t{8192} << 20);
  EXPECT_EQ(r->root_vdev, "xvdb");
  EXPECT_TRUE(r->paused);
  EXPECT_FALSE(r->customizations.reset_identity);
  EXPECT_EQ(r->customizations.hostname, "web1");
  ASSERT_EQ(r->customizations.files.size(), 1u);
  EXPECT_EQ(r->customizations.files[0].mode, 0644u);  // 0 in the proto
  ASSERT_EQ(r->customizations.ssh_keys.size(), 1u);
  EXPECT_EQ(r->customizations.ssh_keys[0].user, "root");  // "" in the proto
  ASSERT_EQ(r->networks.size(), 1u);
  EXPECT_EQ(r->networks[0].vif, 1u);
  EXPECT_EQ(r->networks[0].gateway, "10.0.0.1");
  EXPECT_EQ(r->networks[0].dns, std::vector<std::string>{"10.0.0.53"});
}

// A container_text arrives with its file's name, for the Provisioner to parse.
TEST(ProvisionRequestTest, CarriesAContainerText) {
  v1::CreateDomainRequest req;
  req.mutable_root()->set_image("debian-12");
  req.set_container_file_name("web1.container");
  req.add_customizations()->set_container_text("[hostname web1 archive root][end]\n");
  auto r = provisionRequest(req, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->container.has_value());
  EXPECT_EQ(r->container->text, "[hostname web1 archive root][end]\n");
  EXPECT_EQ(r->container->file_name, "web1.container");
}

// An unknown kind, a second hostname and a second container_text are bad requests.
TEST(ProvisionRequestTest, RefusesWhatItCannotCarry) {
  v1::CreateDomainRequest req;
  req.mutable_root()->set_image("debian-12");
  req.add_customizations()->set_container_text("a");
  req.add_customizations()->set_container_text("b");
  EXPECT_EQ(provisionRequest(req, {}).status().code(), absl::StatusCode::kInvalidArgument);
  req.clear_customizations();
  req.add_customizations();
  EXPECT_EQ(provisionRequest(req, {}).status().code(), absl::StatusCode::kInvalidArgument);
  req.clear_customizations();
  req.add_customizations()->set_hostname("a");
  req.add_customizations()->set_hostname("b");
  auto r = provisionRequest(req, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("a second hostname ('b' after 'a')"), std::string::npos) << r.status();
}

// A CustomizeVolume carries its typed customizations, its interfaces in
// order with their vif index, the identity choice and the instance-id.
TEST(CustomizeVolumeRequestTest, CarriesCustomizationsAndInterfaces) {
  v1::CustomizeVolumeRequest req;
  req.set_pool("thin");
  req.set_name("disk0");
  req.set_instance_id("iid-1");
  req.add_customizations()->set_hostname("web1");
  req.add_customizations()->mutable_ssh_authorized_keys()->add_keys("ssh-ed25519 AAAA k");
  v1::GuestInterface* g = req.add_interfaces();
  g->set_mac("aa:00:00:00:00:01");
  g->set_address("10.0.0.5/24");
  g->set_gateway("10.0.0.1");
  g->add_dns("10.0.0.53");
  g->set_vif_index(1);
  auto r = customizeVolumeRequest(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((std::pair{r->pool, r->name}), (std::pair<std::string, std::string>{"thin", "disk0"}));
  EXPECT_EQ(r->customizations.hostname, "web1");
  ASSERT_EQ(r->customizations.ssh_keys.size(), 1u);
  EXPECT_EQ(r->customizations.ssh_keys[0].user, "root");
  EXPECT_TRUE(r->customizations.reset_identity);
  EXPECT_EQ(r->customizations.instance_id, "iid-1");
  ASSERT_EQ(r->customizations.networks.size(), 1u);
  const core::NetworkInterface& n = r->customizations.networks[0];
  EXPECT_EQ(n.mac, "aa:00:00:00:00:01");
  EXPECT_EQ(n.address, "10.0.0.5/24");
  EXPECT_EQ(n.gateway, "10.0.0.1");
  EXPECT_EQ(n.dns, std::vector<std::string>{"10.0.0.53"});
  EXPECT_EQ(n.vif_index, 1);
}

// CreateDomain's vif-bound network settings and container texts are not
// CustomizeVolume's: refused, saying what to use instead.
TEST(CustomizeVolumeRequestTest, RefusesNetworkAndContainerCustomizations) {
  v1::CustomizeVolumeRequest req;
  req.set_name("disk0");
  req.add_customizations()->mutable_network()->set_gateway("10.0.0.1");
  auto r = customizeVolumeRequest(req);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("give addresses in `interfaces`"), std::string::npos) << r.status();
  req.clear_customizations();
  req.add_customizations()->set_container_text("[replace root /etc/motd]hi[end]");
  EXPECT_EQ(customizeVolumeRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.clear_customizations();
  req.add_customizations();  // no kind
  EXPECT_EQ(customizeVolumeRequest(req).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::daemon
