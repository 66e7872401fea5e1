// Controller's helpers live in the host binary (exported with -rdynamic), like Process's.
#include "controllers/controller.h"

namespace sprocket {

Controller::~Controller() = default;

ServerControl& Controller::Control() const { return context_->Control(); }

int Controller::WorkerIndex() const { return context_->WorkerIndex(); }

}  // namespace sprocket
