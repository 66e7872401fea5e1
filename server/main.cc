// //server: the sprocket server. With --config=FILE it runs the file's registrations; with no
// arguments it runs the embedded default, the seed's examples from a unit built beside it:
// testProcess x2 (logs its name and arg) and processReload (logs every 3 s).
#include <ctime>

#include "absl/strings/str_cat.h"
#include "server/server.h"

namespace {

absl::Status EmbeddedDefault(sprocket::ServerConfig& config) {
  const std::string unit = sprocket::RunfilePath("sprocket/process/seed/libseed_processes.so");
  if (unit.empty()) {
    return absl::FailedPreconditionError(
        "the embedded default needs the seed unit from the Bazel runfiles: run it with "
        "`bazel run //server`, or pass --config=FILE");
  }
  sprocket::ProcessConfig test;
  test.name = "testProcess";
  test.group = "seed";
  test.unit = unit;
  test.class_name = "TestProcess";
  test.count = 2;
  test.arg = {{"arg1", static_cast<long long>(std::time(nullptr))}};
  config.processes.push_back(test);

  sprocket::ProcessConfig reload;
  reload.name = "processReload";
  reload.group = "seed";
  reload.unit = unit;
  reload.class_name = "ProcessReload";
  config.processes.push_back(reload);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  sprocket::ServerOptions options;
  options.default_config = EmbeddedDefault;
  return sprocket::RunServer(argc, argv, options);
}
