#include "tests/integration/server_harness.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace sprocket::testing {

using bazel::tools::cpp::runfiles::Runfiles;

std::string Runfile(const std::string& path) {
  static Runfiles* runfiles = Runfiles::CreateForTest();
  return runfiles == nullptr ? path : runfiles->Rlocation(path);
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

bool IsAlive(pid_t pid) {
  if (pid <= 0) {
    return false;
  }
  const std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const std::size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' &&
         stat[close + 2] != 'X';
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream(path) << contents;
}

void ReplaceFile(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".new";
  {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(tmp, std::ios::binary);
    out << in.rdbuf();
  }
  ::chmod(tmp.c_str(), 0755);
  ::rename(tmp.c_str(), to.c_str());
}

CommandResult RunCommand(const std::vector<std::string>& argv, int uid) {
  char out_templ[] = "/tmp/sprocket-cmd-XXXXXX";
  const std::string dir = ::mkdtemp(out_templ);
  const std::string out = dir + "/out", err = dir + "/err";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    if (uid >= 0 && (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
                     ::setresuid(uid, uid, uid) != 0)) {
      ::_exit(126);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFileOrEmpty(out),
                  ReadFileOrEmpty(err)};
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return r;
}

ServerUnderTest::ServerUnderTest() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base ? base : "/tmp", "/sprocket-XXXXXX");
  dir_ = ::mkdtemp(templ.data());
  // A unix socket path must fit in 107 bytes, which TEST_TMPDIR paths do not: the run dir
  // (control.sock lives there) goes under /tmp.
  std::string run_templ = "/tmp/sprocket-run-XXXXXX";
  run_dir_ = std::string(::mkdtemp(run_templ.data())) + "/run";
}

ServerUnderTest::~ServerUnderTest() {
  if (master_ > 0) {
    ::kill(master_, SIGKILL);
    ::waitpid(master_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(std::filesystem::path(run_dir_).parent_path(), ignored);
}

pid_t ServerUnderTest::Spawn(const std::string& config_toml, std::vector<std::string> flags) {
  const std::string binary = Runfile("sprocket/server/server");
  // Port 0: every test server gets its own port (see ServerUnderTest::HttpAddress).
  // Tests never claim the host system bus name: the private socket serves them.
  std::vector<std::string> args = {binary, "--run_dir=" + run_dir_, "--listen=127.0.0.1:0",
                                   "--system_bus=false"};
  if (!config_toml.empty()) {
    WriteFile(config_path(), config_toml);
    args.push_back("--config=" + config_path());
  }
  args.insert(args.end(), flags.begin(), flags.end());
  const std::string log = dir_ + "/server.log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (std::string& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

absl::Status ServerUnderTest::Start(const std::string& config_toml,
                                    std::vector<std::string> flags) {
  master_ = Spawn(config_toml, std::move(flags));
  if (master_ < 0) {
    return absl::ErrnoToStatus(errno, "fork");
  }
  // Started means the master holds the run dir (master.pid names it).
  if (!WaitUntil([&] {
        return ReadFileOrEmpty(run_dir_ + "/master.pid") == absl::StrCat(master_, "\n");
      })) {
    return absl::DeadlineExceededError("the master did not take its run dir; log:\n" + Log());
  }
  return absl::OkStatus();
}

int ServerUnderTest::RunToExit(const std::string& config_toml, std::vector<std::string> flags) {
  const pid_t pid = Spawn(config_toml, std::move(flags));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::optional<int> ServerUnderTest::WaitExit(std::chrono::milliseconds timeout) {
  int status = 0;
  if (!WaitUntil([&] { return ::waitpid(master_, &status, WNOHANG) == master_; }, timeout)) {
    return std::nullopt;
  }
  master_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ServerUnderTest::Stop(std::chrono::milliseconds timeout) {
  if (master_ <= 0) {
    return -1;
  }
  ::kill(master_, SIGTERM);
  return WaitExit(timeout).value_or(-1);
}

std::vector<SlotRecord> ServerUnderTest::Slots() const {
  return ReadRegistry(run_dir_).value_or(std::vector<SlotRecord>{});
}

std::optional<SlotRecord> ServerUnderTest::Slot(const std::string& name, int index) const {
  for (SlotRecord& r : Slots()) {
    if (r.name == name && r.index == index) {
      return r;
    }
  }
  return std::nullopt;
}

pid_t ServerUnderTest::PidFile(const std::string& name, int index) const {
  pid_t pid = 0;
  const std::string text = ReadFileOrEmpty(absl::StrCat(run_dir_, "/", name, ".", index, ".pid"));
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? pid : 0;
}

std::string ServerUnderTest::HttpAddress() const {
  std::vector<std::string> listen = ReadRegistryListen(run_dir_).value_or(std::vector<std::string>{});
  return listen.empty() ? "" : listen[0];
}

pid_t ServerUnderTest::ManagerPid() const {
  pid_t pid = 0;
  const std::string text = ReadFileOrEmpty(run_dir_ + "/manager.pid");
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? pid : 0;
}

bool ServerUnderTest::WaitForState(const std::string& name, int index, const std::string& state,
                                   std::chrono::milliseconds timeout) const {
  return WaitUntil(
      [&] {
        std::optional<SlotRecord> r = Slot(name, index);
        return r.has_value() && r->state == state;
      },
      timeout);
}

}  // namespace sprocket::testing
