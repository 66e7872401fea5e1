// //server: the sprocket server. It always serves the default controllers (GET /, GET /process,
// POST /process/restart, POST /process/send) from a unit built beside it. With --config=FILE it
// runs the file's registrations; with no arguments it runs the embedded default, the seed's
// examples: testProcess x2 (logs its name and arg) and processReload (logs every 3 s).
#include <ctime>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "server/server.h"

namespace {

// A unit built beside the binary: from its Bazel runfiles, or — once installed by
// tools/install — from the units/ folder next to the binary.
absl::StatusOr<std::string> BundledUnit(const std::string& path) {
  std::string unit = sprocket::RunfilePath(path);
  if (!unit.empty() && std::filesystem::exists(unit)) {
    return unit;
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path installed =
      exe.parent_path() / "units" / std::filesystem::path(path).filename();
  if (!ec && std::filesystem::exists(installed)) {
    return installed.string();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot find the bundled unit ", path, " in the Bazel runfiles or at ",
      installed.string(), ": run the server with `bazel run //server`, or install it with "
      "tools/install"));
}

absl::Status DefaultControllers(sprocket::ServerConfig& config) {
  absl::StatusOr<std::string> unit =
      BundledUnit("sprocket/controllers/default/libdefault_controllers.so");
  if (!unit.ok()) {
    return unit.status();
  }
  config.http.units.push_back(*unit);
  return absl::OkStatus();
}

absl::Status EmbeddedDefault(sprocket::ServerConfig& config) {
  absl::StatusOr<std::string> seed = BundledUnit("sprocket/process/seed/libseed_processes.so");
  if (!seed.ok()) {
    return seed.status();
  }
  const std::string unit = *seed;
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
  options.main_server_create = DefaultControllers;
  options.default_config = EmbeddedDefault;
  return sprocket::RunServer(argc, argv, options);
}
