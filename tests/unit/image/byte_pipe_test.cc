#include "lib/image/byte_pipe.h"

#include <gtest/gtest.h>

#include <thread>

namespace xenctl::image {
namespace {

// Chunks come out in order, then the end of the stream.
TEST(BytePipe, PassesChunksInOrder) {
  BytePipe pipe(16);
  std::string got;
  std::thread reader([&] {
    for (;;) {
      auto c = pipe.read();
      ASSERT_TRUE(c.ok());
      if (c->empty()) break;
      got += *c;
    }
  });
  std::string want;
  for (int i = 0; i < 1000; ++i) {
    std::string chunk = std::to_string(i) + ",";
    want += chunk;
    ASSERT_TRUE(pipe.write(chunk).ok());
  }
  pipe.closeWrite(Status());
  reader.join();
  EXPECT_EQ(got, want);
}

// Writers and readers of uneven pace, with chunks larger than the capacity, lose and reorder nothing.
TEST(BytePipe, UnevenChunksPassWhole) {
  BytePipe pipe(64 << 10);
  std::string got;
  std::thread reader([&] {
    for (int n = 0;; ++n) {
      auto c = pipe.read();
      ASSERT_TRUE(c.ok());
      if (c->empty()) break;
      got += *c;
      if (n % 7 == 0) std::this_thread::yield();
    }
  });
  std::string want;
  for (int i = 0; i < 2000; ++i) {
    std::string chunk(static_cast<size_t>(i % 3 == 0 ? 100 << 10 : 1 + i % 977), static_cast<char>('a' + i % 26));
    want += chunk;
    ASSERT_TRUE(pipe.write(chunk).ok());
  }
  pipe.closeWrite(Status());
  reader.join();
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "bytes reordered or lost";
}

// The writer's error reaches the reader after the data before it.
TEST(BytePipe, WriterErrorReachesReader) {
  BytePipe pipe(1024);
  ASSERT_TRUE(pipe.write("abc").ok());
  pipe.closeWrite(absl::UnavailableError("dropped"));
  EXPECT_EQ(pipe.read().value(), "abc");
  EXPECT_EQ(pipe.read().status().code(), absl::StatusCode::kUnavailable);
}

// A writer blocked on a full pipe is released by the reader closing, with the reader's reason.
TEST(BytePipe, ReaderCloseReleasesBlockedWriter) {
  BytePipe pipe(4);
  ASSERT_TRUE(pipe.write("full").ok());
  Status second;
  std::thread writer([&] { second = pipe.write("more"); });
  pipe.closeRead(absl::InvalidArgumentError("hostile archive"));
  writer.join();
  EXPECT_EQ(second.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pipe.write("x").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace xenctl::image
