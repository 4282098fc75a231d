#include "daemon/peers.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <gtest/gtest.h>

#include <map>

namespace xenctl::daemon {
namespace {

// An AuthContext holding given properties, as gRPC's TLS handshake fills one.
class FakeAuthContext : public grpc::AuthContext {
 public:
  FakeAuthContext(bool authenticated, std::multimap<std::string, std::string> properties)
      : authenticated_(authenticated), properties_(std::move(properties)) {}
  bool IsPeerAuthenticated() const override { return authenticated_; }
  std::vector<grpc::string_ref> GetPeerIdentity() const override { return {}; }
  std::string GetPeerIdentityPropertyName() const override { return ""; }
  std::vector<grpc::string_ref> FindPropertyValues(const std::string& name) const override {
    std::vector<grpc::string_ref> out;
    auto [from, to] = properties_.equal_range(name);
    for (auto it = from; it != to; ++it) out.emplace_back(it->second);
    return out;
  }
  grpc::AuthPropertyIterator begin() const override { return End(); }
  grpc::AuthPropertyIterator end() const override { return End(); }
  void AddProperty(const std::string& key, const grpc::string_ref& value) override {
    properties_.emplace(key, std::string(value.data(), value.size()));
  }
  bool SetPeerIdentityPropertyName(const std::string&) override { return false; }

 private:
  struct End : grpc::AuthPropertyIterator {};
  bool authenticated_;
  std::multimap<std::string, std::string> properties_;
};

// A verified client certificate becomes a kCertificate identity with its subject and typed SANs.
TEST(CertificateIdentity, SubjectAndSans) {
  FakeAuthContext auth(true, {{GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, GRPC_SSL_TRANSPORT_SECURITY_TYPE},
                              {GRPC_X509_SUBJECT_PROPERTY_NAME, "CN=orchestrator,O=example"},
                              {GRPC_PEER_DNS_PROPERTY_NAME, "orch.example"},
                              {GRPC_PEER_URI_PROPERTY_NAME, "spiffe://example/orch"},
                              {GRPC_PEER_EMAIL_PROPERTY_NAME, "ops@example"},
                              {GRPC_PEER_IP_PROPERTY_NAME, "192.0.2.7"}});
  auto id = certificateIdentity(auth);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->kind, core::Identity::Kind::kCertificate);
  EXPECT_EQ(id->subject, "CN=orchestrator,O=example");
  EXPECT_EQ(id->sans, (std::vector<std::string>{"DNS:orch.example", "URI:spiffe://example/orch", "email:ops@example",
                                                "IP:192.0.2.7"}));
  EXPECT_EQ(id->uid, -1);
  EXPECT_EQ(describe(*id),
            "cert=\"CN=orchestrator,O=example\" sans=\"DNS:orch.example,URI:spiffe://example/orch,email:ops@example,"
            "IP:192.0.2.7\"");
}

// A certificate with SANs and an empty subject is still an identity; one with neither is none.
TEST(CertificateIdentity, EmptySubject) {
  auto id = certificateIdentity(FakeAuthContext(true, {{GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME,
                                                        GRPC_SSL_TRANSPORT_SECURITY_TYPE},
                                                       {GRPC_X509_SUBJECT_PROPERTY_NAME, ""},
                                                       {GRPC_PEER_URI_PROPERTY_NAME, "spiffe://example/orch"}}));
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->subject, "");
  EXPECT_EQ(id->sans, std::vector<std::string>{"URI:spiffe://example/orch"});
  EXPECT_FALSE(certificateIdentity(FakeAuthContext(true, {{GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME,
                                                           GRPC_SSL_TRANSPORT_SECURITY_TYPE}}))
                   .has_value());
}

// Without a verified certificate (plaintext, or TLS that did not authenticate the peer) there is no identity.
TEST(CertificateIdentity, NoneWithoutVerifiedCertificate) {
  EXPECT_FALSE(certificateIdentity(FakeAuthContext(false, {})).has_value());
  EXPECT_FALSE(certificateIdentity(FakeAuthContext(false, {{GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME,
                                                             GRPC_SSL_TRANSPORT_SECURITY_TYPE},
                                                            {GRPC_X509_SUBJECT_PROPERTY_NAME, "CN=x"}}))
                   .has_value());
  EXPECT_FALSE(certificateIdentity(FakeAuthContext(true, {{GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, "insecure"},
                                                           {GRPC_X509_SUBJECT_PROPERTY_NAME, "CN=x"}}))
                   .has_value());
}

// Unix callers are named by uid and gid; an unknown caller says so.
TEST(CertificateIdentity, DescribeOtherKinds) {
  core::Identity unix;
  unix.kind = core::Identity::Kind::kUnix;
  unix.uid = 1000;
  unix.gid = 100;
  EXPECT_EQ(describe(unix), "uid=1000 gid=100");
  EXPECT_EQ(describe(core::Identity{}), "identity=unknown");
}

}  // namespace
}  // namespace xenctl::daemon
