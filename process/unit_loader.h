// File: process/unit_loader.h
//
// Loads a unit (dlopen) in a child process and builds instances of the classes it registers.
// Every way a unit can be wrong — missing file, unresolved symbol, no entry point, another ABI
// version, unknown class, a constructor that throws — is an error whose message names the unit
// and quotes the loader verbatim, and which carries the child's exit code for that failure.
//
//   absl::StatusOr<std::shared_ptr<UnitHandle>> unit = UnitHandle::Open("/opt/app/libjobs.so");
//   absl::StatusOr<const sprocket_unit_class*> cls =
//       (*unit)->FindClass(SPROCKET_UNIT_PROCESS, "TestProcess");
//   absl::StatusOr<void*> instance = CreateUnitInstance(**unit, **cls);
//   if (!instance.ok()) _exit(UnitLoadExitCode(instance.status()));
//
// Limits: children only, after fork. The master and manager must never call this: a unit they
// mapped could never be replaced by a respawn.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "process/unit_abi.h"

namespace sprocket {

// An open unit; dlclose'd when the last UnitObject made from it is gone.
class UnitHandle {
 public:
  static absl::StatusOr<std::shared_ptr<UnitHandle>> Open(const std::string& path);
  ~UnitHandle();
  UnitHandle(const UnitHandle&) = delete;
  UnitHandle& operator=(const UnitHandle&) = delete;

  // The registration of class `name` of `kind`, or an error listing what the unit does have.
  absl::StatusOr<const sprocket_unit_class*> FindClass(sprocket_unit_class_kind kind,
                                                       const std::string& name) const;
  // Every registration of `kind`, in the unit's order.
  std::vector<const sprocket_unit_class*> ClassesOfKind(sprocket_unit_class_kind kind) const;
  const std::string& path() const { return path_; }

 private:
  UnitHandle(std::string path, void* dl, const sprocket_unit* table)
      : path_(std::move(path)), dl_(dl), table_(table) {}
  std::string path_;
  void* dl_;
  const sprocket_unit* table_;
};

// An instance built by a unit's factory. Destroyed by the unit's own destroy function before
// the unit can be unloaded (it holds the handle).
template <typename T>
class UnitObject {
 public:
  UnitObject(std::shared_ptr<UnitHandle> unit, const sprocket_unit_class* cls, void* instance)
      : unit_(std::move(unit)), cls_(cls), instance_(instance) {}
  UnitObject(UnitObject&& other) noexcept
      : unit_(std::move(other.unit_)),
        cls_(other.cls_),
        instance_(std::exchange(other.instance_, nullptr)) {}
  UnitObject& operator=(UnitObject&&) = delete;
  ~UnitObject() {
    if (instance_ != nullptr) {
      cls_->destroy(instance_);
    }
  }
  T* get() const { return static_cast<T*>(instance_); }
  // The process is about to _exit: the unit stays mapped (no dlclose, no unmapping work on the
  // way out; the kernel reclaims it anyway).
  void KeepUnitLoaded() { new std::shared_ptr<UnitHandle>(unit_); }
  T* operator->() const { return get(); }

 private:
  std::shared_ptr<UnitHandle> unit_;
  const sprocket_unit_class* cls_;
  void* instance_;
};

// Builds one instance of `class_name` from `unit`. The pointer the factory returns is a T*
// (units register only classes derived from the kind's base, enforced by unit.h's templates).
absl::StatusOr<void*> CreateUnitInstance(const UnitHandle& unit, const sprocket_unit_class& cls);

// A load error carrying the child exit code (process/exit_codes.h) for its kind of failure.
absl::Status UnitLoadError(int exit_code, std::string message);

// The child exit code (process/exit_codes.h) for a load error from this module.
int UnitLoadExitCode(const absl::Status& status);

}  // namespace sprocket
