// Built against a function no binary defines: dlopen(RTLD_NOW) must fail with "undefined symbol".
#include "process/unit.h"

extern "C" void sprocket_test_symbol_nobody_defines();

namespace {

class NeedsMissingSymbol : public sprocket::Process {
 public:
  void Run(const nlohmann::json&) override { sprocket_test_symbol_nobody_defines(); }
};

}  // namespace

SPROCKET_PROCESS(NeedsMissingSymbol);
