#include "process/unit_loader.h"

#include <dlfcn.h>

#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "process/exit_codes.h"

namespace sprocket {
namespace {

constexpr char kExitCodePayload[] = "sprocket.dev/exit_code";

}  // namespace

absl::Status UnitLoadError(int exit_code, std::string message) {
  absl::Status status = absl::FailedPreconditionError(std::move(message));
  status.SetPayload(kExitCodePayload, absl::Cord(absl::StrCat(exit_code)));
  return status;
}

namespace {

const char* KindName(std::uint32_t kind) {
  return kind == SPROCKET_UNIT_CONTROLLER ? "controller" : "process";
}

}  // namespace

absl::StatusOr<std::shared_ptr<UnitHandle>> UnitHandle::Open(const std::string& path) {
  // RTLD_NOW: an unresolved symbol is an error here, with its name, not a crash later.
  // RTLD_LOCAL: two units in one process never resolve against each other.
  void* dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    return UnitLoadError(kExitUnitOpen, absl::StrCat("cannot load unit: ", ::dlerror()));
  }
  auto entry = reinterpret_cast<sprocket_unit_entry_fn>(::dlsym(dl, SPROCKET_UNIT_ENTRY_SYMBOL));
  if (entry == nullptr) {
    std::string why = ::dlerror();
    ::dlclose(dl);
    return UnitLoadError(kExitUnitEntry,
                     absl::StrCat("unit ", path, " has no ", SPROCKET_UNIT_ENTRY_SYMBOL,
                                  " (not built with sprocket_unit?): ", why));
  }
  const sprocket_unit* table = entry();
  if (table == nullptr || table->abi_version != SPROCKET_UNIT_ABI_VERSION) {
    const unsigned got = table == nullptr ? 0 : table->abi_version;
    ::dlclose(dl);
    return UnitLoadError(kExitUnitAbi,
                     absl::StrFormat("unit %s was built for unit ABI version %u; this server "
                                     "speaks version %u: rebuild the unit",
                                     path, got, SPROCKET_UNIT_ABI_VERSION));
  }
  return std::shared_ptr<UnitHandle>(new UnitHandle(path, dl, table));
}

UnitHandle::~UnitHandle() { ::dlclose(dl_); }

absl::StatusOr<const sprocket_unit_class*> UnitHandle::FindClass(
    sprocket_unit_class_kind kind, const std::string& name) const {
  std::vector<std::string> known;
  for (std::size_t i = 0; i < table_->class_count; ++i) {
    const sprocket_unit_class& cls = table_->classes[i];
    if (cls.kind == static_cast<std::uint32_t>(kind) && name == cls.name) {
      return &cls;
    }
    known.push_back(absl::StrCat(KindName(cls.kind), " ", cls.name));
  }
  return UnitLoadError(kExitUnitClass,
                   absl::StrFormat("unit %s registers no %s class '%s' (it has: %s)", path_,
                                   KindName(kind), name,
                                   known.empty() ? "nothing" : absl::StrJoin(known, ", ")));
}

std::vector<const sprocket_unit_class*> UnitHandle::ClassesOfKind(
    sprocket_unit_class_kind kind) const {
  std::vector<const sprocket_unit_class*> out;
  for (std::size_t i = 0; i < table_->class_count; ++i) {
    if (table_->classes[i].kind == static_cast<std::uint32_t>(kind)) {
      out.push_back(&table_->classes[i]);
    }
  }
  return out;
}

absl::StatusOr<void*> CreateUnitInstance(const UnitHandle& unit, const sprocket_unit_class& cls) {
  char err[512] = {};
  void* instance = nullptr;
  const int r = cls.create(&instance, err, sizeof(err));
  if (r < 0 || instance == nullptr) {
    err[sizeof(err) - 1] = '\0';
    return UnitLoadError(kExitUnitConstruct, absl::StrFormat("unit %s: class '%s': %s", unit.path(),
                                                         cls.name, err[0] ? err : "create failed"));
  }
  return instance;
}

int UnitLoadExitCode(const absl::Status& status) {
  int code = kExitChildSetup;
  if (auto payload = status.GetPayload(kExitCodePayload)) {
    (void)absl::SimpleAtoi(std::string(*payload), &code);
  }
  return code;
}

}  // namespace sprocket
