#include "process/exit_codes.h"

namespace sprocket {

std::string_view ExitCodeName(int code) {
  switch (code) {
    case kExitClean:
      return "clean";
    case kExitException:
      return "exception";
    case kExitUnitOpen:
      return "unit_open";
    case kExitUnitEntry:
      return "unit_entry";
    case kExitUnitAbi:
      return "unit_abi";
    case kExitUnitClass:
      return "unit_class";
    case kExitUnitConstruct:
      return "unit_construct";
    case kExitChildSetup:
      return "child_setup";
    case kExitRoutes:
      return "routes";
    default:
      return "";
  }
}

}  // namespace sprocket
