// Linked into every unit by the sprocket_unit macro (never into the host): the unit's registration
// list and its exported entry point. Everything but the entry point has hidden visibility so that
// each unit keeps its own list even though the host exports its symbols with -rdynamic.
#include <vector>

#include "process/unit.h"

namespace sprocket::unit_internal {
namespace {

Registration* g_head = nullptr;

}  // namespace

void Register(Registration* registration) {
  registration->next = g_head;
  g_head = registration;
}

}  // namespace sprocket::unit_internal

extern "C" __attribute__((visibility("default"))) const sprocket_unit* sprocket_unit_entry(void) {
  // Built on first call, after every static Registrar in the unit ran (they run at dlopen).
  static const std::vector<sprocket_unit_class> classes = [] {
    std::vector<sprocket_unit_class> out;
    for (auto* r = sprocket::unit_internal::g_head; r != nullptr; r = r->next) {
      out.push_back(r->entry);
    }
    return out;
  }();
  static const sprocket_unit unit = {SPROCKET_UNIT_ABI_VERSION, sizeof(sprocket_unit),
                                     classes.size(), classes.data()};
  return &unit;
}
