// The commands of vmm and vm-*, one file each.
#pragma once

#include <memory>

#include "client/lib/command.h"

namespace xenctl::client {

std::unique_ptr<Command> makeCreateCommand();
std::unique_ptr<Command> makeListCommand();
std::unique_ptr<Command> makeInfoCommand();
std::unique_ptr<Command> makeStartCommand();
std::unique_ptr<Command> makeShutdownCommand();
std::unique_ptr<Command> makeRebootCommand();
std::unique_ptr<Command> makeDestroyCommand();
std::unique_ptr<Command> makeDeleteCommand();
std::unique_ptr<Command> makePauseCommand();
std::unique_ptr<Command> makeUnpauseCommand();
std::unique_ptr<Command> makeSetCommand();
std::unique_ptr<Command> makeOpsCommand();
std::unique_ptr<Command> makeWatchCommand();
std::unique_ptr<Command> makeHostCommand();
std::unique_ptr<Command> makeVolumeCommand();
std::unique_ptr<Command> makeConsoleCommand();
std::unique_ptr<Command> makeImageCommand();

}  // namespace xenctl::client
