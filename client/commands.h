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
std::unique_ptr<Command> makeContainerCommand();
std::unique_ptr<Command> makeForkCommand();
std::unique_ptr<Command> makeDiffCommand();
std::unique_ptr<Command> makeAccessCommand();

/// vmm create FILE of a container file (cmd_container.cc): has the daemon
/// check it, run its expressions and wait for them, then leaves in `file`
/// the plain xl config to create the domain from. A plain xl config is left
/// as it is. Returns kExitOk to go on, else the exit code (already reported).
int applyContainerFile(Session& s, Client& c, v1::XlConfig& file, const std::string& request_id);

/// vmm create FILE --image IMAGE of a container file: its expressions go
/// into the CreateDomain as its container_text, to run on the new root
/// inside the provisioning operation, and its plain xl config (checked by
/// the daemon's StripContainer) stays as the request's xl config. A plain
/// xl config is left as it is. Returns kExitOk to go on, else the exit code.
int moveContainerIntoCreate(Session& s, Client& c, v1::CreateDomainRequest& req);

}  // namespace xenctl::client
