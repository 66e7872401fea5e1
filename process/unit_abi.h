// File: process/unit_abi.h
//
// The one boundary between the sprocket host and a unit (a shared library of user code). A unit
// exports a single C function, `sprocket_unit_entry`, returning a static table of the classes it
// registers. Everything here is plain C: versioned POD structs, negative-errno results, no
// exceptions and no std/absl types, so the host can check a unit before trusting any C++ in it.
//
// Units are written with process/unit.h (SPROCKET_PROCESS) and built with the `sprocket_unit`
// Bazel macro (process/unit.bzl); nobody writes this table by hand.
//
// Limits: loaded only in child processes, after fork. The master and the manager never dlopen.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Bumped whenever a struct below or the C++ classes handed across (sprocket::Process) change
// layout. A unit built against another version is refused with both numbers in the reason.
#ifndef SPROCKET_UNIT_ABI_VERSION
#define SPROCKET_UNIT_ABI_VERSION 1
#endif

#define SPROCKET_UNIT_ENTRY_SYMBOL "sprocket_unit_entry"

enum sprocket_unit_class_kind {
  SPROCKET_UNIT_PROCESS = 1,
  SPROCKET_UNIT_CONTROLLER = 2,
};

typedef struct sprocket_unit_class {
  uint32_t kind;     // a sprocket_unit_class_kind
  const char* name;  // the name configs use ("class = ...")
  // Constructs one instance into *out. Returns 0, or a negative errno with a message in err
  // (always NUL-terminated) — e.g. -ECANCELED when the constructor threw.
  int (*create)(void** out, char* err, size_t err_len);
  // Destroys an instance made by create. Never throws.
  void (*destroy)(void* instance);
} sprocket_unit_class;

typedef struct sprocket_unit {
  uint32_t abi_version;  // SPROCKET_UNIT_ABI_VERSION the unit was built with
  uint32_t struct_size;  // sizeof(sprocket_unit) in the unit, for forward compatibility
  size_t class_count;
  const sprocket_unit_class* classes;
} sprocket_unit;

typedef const sprocket_unit* (*sprocket_unit_entry_fn)(void);

// Exported by every unit. Returns a table that stays valid until the unit is unloaded.
const sprocket_unit* sprocket_unit_entry(void);

#ifdef __cplusplus
}  // extern "C"
#endif
