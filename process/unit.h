// File: process/unit.h
//
// What a unit's source includes to register its classes: one line per class.
//
//   #include "process/unit.h"
//   class TestProcess : public sprocket::Process { ... };
//   SPROCKET_PROCESS(TestProcess);                 // registered as "TestProcess"
//   SPROCKET_PROCESS_AS(TestProcess, "test");      // or under another name
//
// Build the unit with the `sprocket_unit` macro from process/unit.bzl, which links in the entry
// point (process/unit_entry.cc). Registrations are static objects run when the unit is loaded;
// each unit has its own list (hidden visibility), so two units loaded in one process never mix.
#pragma once

#include <cerrno>
#include <cstdio>
#include <exception>
#include <new>
#include <type_traits>

#include "process/process.h"
#include "process/unit_abi.h"

namespace sprocket::unit_internal {

// One registered class; the registrations form a list the unit's entry point turns into its table.
struct __attribute__((visibility("hidden"))) Registration {
  sprocket_unit_class entry;
  Registration* next;
};

// The head of this unit's list (defined in unit_entry.cc, linked into every unit).
__attribute__((visibility("hidden"))) void Register(Registration* registration);

// Base is the kind's base class (Process, Controller): the host casts the void* back to it.
template <typename Base, typename T>
int Create(void** out, char* err, size_t err_len) {
  static_assert(std::is_base_of_v<Base, T>, "registered class must derive from the kind's base");
  try {
    *out = static_cast<Base*>(new T());
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, err_len, "constructor threw: %s", e.what());
  } catch (...) {
    std::snprintf(err, err_len, "constructor threw a non-standard exception");
  }
  return -ECANCELED;
}

template <typename Base>
void Destroy(void* instance) {
  delete static_cast<Base*>(instance);
}

struct __attribute__((visibility("hidden"))) Registrar {
  Registrar(Registration* registration) { Register(registration); }
};

}  // namespace sprocket::unit_internal

#define SPROCKET_INTERNAL_CONCAT2(a, b) a##b
#define SPROCKET_INTERNAL_CONCAT(a, b) SPROCKET_INTERNAL_CONCAT2(a, b)

// Registers `cls` (derived from `base`, default-constructible) as `name`, of unit class `kind`.
#define SPROCKET_INTERNAL_REGISTER(kind, base, cls, name)                                     \
  static ::sprocket::unit_internal::Registration SPROCKET_INTERNAL_CONCAT(                    \
      sprocket_registration_, __LINE__){                                                      \
      {kind, name, &::sprocket::unit_internal::Create<base, cls>,                             \
       &::sprocket::unit_internal::Destroy<base>},                                            \
      nullptr};                                                                               \
  static ::sprocket::unit_internal::Registrar SPROCKET_INTERNAL_CONCAT(sprocket_registrar_,   \
                                                                       __LINE__)(             \
      &SPROCKET_INTERNAL_CONCAT(sprocket_registration_, __LINE__))

// Registers process class `cls` (derived from sprocket::Process) as `name`.
#define SPROCKET_PROCESS_AS(cls, name) \
  SPROCKET_INTERNAL_REGISTER(SPROCKET_UNIT_PROCESS, ::sprocket::Process, cls, name)

// Registers process class `cls` under its own name.
#define SPROCKET_PROCESS(cls) SPROCKET_PROCESS_AS(cls, #cls)
