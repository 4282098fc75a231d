// The names of one pool busy with a call, shared by the VolumeManager
// backends: a name is held exclusively (the volume being made, changed or
// removed) or shared by any number of readers (a clone's base).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "lib/core/status.h"

namespace xenctl::storage {

class NameHolds {
 public:
  /// Releases its names when it goes.
  class Hold {
   public:
    Hold(Hold&& o) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    Hold& operator=(Hold&&) = delete;
    ~Hold();

   private:
    friend class NameHolds;
    Hold(NameHolds* owner, std::string exclusive, std::string shared);
    NameHolds* owner_;
    std::string exclusive_, shared_;
  };

  /// Holds `exclusive` and `shared` ("" for none) until the Hold goes.
  /// FAILED_PRECONDITION, naming the object as `who` renders it, when
  /// `exclusive` is held at all or `shared` is held exclusively.
  Result<Hold> hold(const std::string& exclusive, const std::string& shared,
                    const std::function<std::string(const std::string&)>& who);

 private:
  std::mutex mu_;
  std::map<std::string, int> busy_;  // name -> shared holders, or -1 when exclusive
};

}  // namespace xenctl::storage
