// vmm, and every vm-* name linked to it.
#include "client/commands.h"

using namespace xenctl::client;

namespace {

// Order is the order of `vmm --help`. vm_alias: also installed as vm-NAME.
constexpr CommandInfo kCommands[] = {
    {"create", "Define a domain and start it", true, makeCreateCommand},
    {"list", "List domains", true, makeListCommand},
    {"info", "Show one domain", true, makeInfoCommand},
    {"start", "Start a stopped domain", true, makeStartCommand},
    {"shutdown", "Shut a domain down cleanly", true, makeShutdownCommand},
    {"reboot", "Reboot a domain", true, makeRebootCommand},
    {"destroy", "Stop a domain at once (xl destroy); keep its definition", true, makeDestroyCommand},
    {"delete", "Remove a domain's definition", true, makeDeleteCommand},
    {"pause", "Pause a domain", true, makePauseCommand},
    {"unpause", "Unpause a domain", true, makeUnpauseCommand},
    {"set", "Change a domain's vcpus or memory, live and in its definition", true, makeSetCommand},
    {"console", "Attach to a domain's console (Ctrl-] leaves)", true, makeConsoleCommand},
    {"volume", "Manage volumes: create, clone, snapshot, rollback, resize, delete, list, pools", true,
     makeVolumeCommand},
    {"image", "Manage golden images: import, list, delete, export", true, makeImageCommand},
    {"container", "Check a container file, run its expressions, write its plain xl config", true,
     makeContainerCommand},
    {"fork", "Make a new domain from a stopped one's volumes, with a new identity", true, makeForkCommand},
    {"diff", "List what a stopped domain's root changed from its golden image", true, makeDiffCommand},
    {"access", "Show or change who owns a domain and who may act on it", true, makeAccessCommand},
    {"ops", "List operations", false, makeOpsCommand},
    {"watch", "Follow one operation to its end", false, makeWatchCommand},
    {"host", "Show the host: hypervisor, CPUs, memory, pools", false, makeHostCommand},
};

}  // namespace

int main(int argc, char** argv) { return runMain(argc, argv, kCommands); }
