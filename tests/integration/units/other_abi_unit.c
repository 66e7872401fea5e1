/* A unit from a future sprocket: its entry point reports ABI version 99. */
#include "process/unit_abi.h"

static const sprocket_unit kUnit = {99, sizeof(sprocket_unit), 0, 0};

const sprocket_unit* sprocket_unit_entry(void) { return &kUnit; }
