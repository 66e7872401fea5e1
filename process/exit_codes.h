// File: process/exit_codes.h
//
// Exit statuses a child uses to tell the manager why it ended before or outside of user code.
// Distinct codes let the manager name the failure in the registry even when the child could not
// send its reason over the pipe.
#pragma once

#include <string_view>

namespace sprocket {

inline constexpr int kExitClean = 0;
// An exception reached Process::OnException's default (EX_SOFTWARE).
inline constexpr int kExitException = 70;
// The unit could not be dlopen'ed: missing file, unresolved symbol, not an ELF...
inline constexpr int kExitUnitOpen = 80;
// The unit has no sprocket_unit_entry: not built with sprocket_unit.
inline constexpr int kExitUnitEntry = 81;
// The unit was built for another SPROCKET_UNIT_ABI_VERSION.
inline constexpr int kExitUnitAbi = 82;
// The unit does not register the configured class.
inline constexpr int kExitUnitClass = 83;
// The class's constructor threw or failed.
inline constexpr int kExitUnitConstruct = 84;
// The child could not set itself up (signalfd, event loop, listen sockets...).
inline constexpr int kExitChildSetup = 85;
// A worker's controllers are unusable: a unit with no controller, or one route registered twice.
inline constexpr int kExitRoutes = 86;

// A short name for the registry ("unit_abi"); empty for statuses that are not ours.
std::string_view ExitCodeName(int code);

}  // namespace sprocket
