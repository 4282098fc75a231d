#include "lib/core/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/cord.h"

namespace xenctl {
namespace {

// errnoStatus chooses the code from errno and names the step, then the system's reason.
TEST(ErrnoStatus, CodeFromErrnoAndMessage) {
  EXPECT_EQ(errnoStatus(ENOENT, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(errnoStatus(EEXIST, "x").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(errnoStatus(EACCES, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(errnoStatus(EPERM, "x").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(errnoStatus(ENOSPC, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(errnoStatus(EDQUOT, "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(errnoStatus(EINVAL, "x").code(), absl::StatusCode::kInvalidArgument);
  const Status st = errnoStatus(ENOENT, "opening /srv/pool/web1.img");
  EXPECT_EQ(st.message(), std::string("opening /srv/pool/web1.img: ") + std::strerror(ENOENT));
}

// annotate puts the step before the message and keeps the code and payloads; OK stays OK.
TEST(Annotate, KeepsCodeAndPayload) {
  EXPECT_TRUE(annotate(absl::OkStatus(), "creating 'web1'").ok());
  Status inner = absl::ResourceExhaustedError("thin pool vg0/pool is 97% full");
  inner.SetPayload("xenctl.test/hint", absl::Cord("extend the pool"));
  const Status st = annotate(inner, "creating root volume for 'web1'");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(st.message(), "creating root volume for 'web1': thin pool vg0/pool is 97% full");
  ASSERT_TRUE(st.GetPayload("xenctl.test/hint").has_value());
  EXPECT_EQ(std::string(*st.GetPayload("xenctl.test/hint")), "extend the pool");
}

// A step the callee already named is not named twice ("creating domain 'x': creating domain 'x': ...").
TEST(Annotate, DoesNotRepeatTheSameStep) {
  const Status inner = absl::InternalError("creating domain 'web1': libxl error fail (-3): no kernel");
  EXPECT_EQ(annotate(inner, "creating domain 'web1'").message(), inner.message());
  EXPECT_EQ(annotate(inner, "provisioning domain 'web1'").message(),
            "provisioning domain 'web1': creating domain 'web1': libxl error fail (-3): no kernel");
}

}  // namespace
}  // namespace xenctl
