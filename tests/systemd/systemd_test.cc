// sprocket under a real systemd 252, booted privately in namespaces (private_systemd.sh), with
// the unit files, policy and binaries that tools/install puts in place. Needs root.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/http_client.h"
#include "tests/integration/server_harness.h"

namespace sprocket::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Requests on fresh connections, in a loop, counting every failure (a refused connection
// included) until stopped.
class ConnectLoop {
 public:
  explicit ConnectLoop(std::string address) {
    thread_ = std::thread([this, address] {
      while (!stop_) {
        absl::StatusOr<HttpReply> r = HttpRequestOnce(address, "GET", "/");
        if (r.ok() && r->status == 200) {
          ++ok_;
        } else {
          ++failed_;
          last_error_ = r.ok() ? absl::StrCat("status ", r->status) : std::string(r.status().message());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  ~ConnectLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  std::atomic<int> ok_{0}, failed_{0};
  std::string last_error_;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class SystemdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root: boots a private systemd in new pid/mount/cgroup namespaces";
    }
    char templ[] = "/tmp/sprocket-systemd-XXXXXX";
    dir_ = ::mkdtemp(templ);
    ns_ = dir_ + "/ns";
    script_ = Runfile("sprocket/tests/systemd/private_systemd.sh");
    CommandResult boot = RunCommand({"/bin/bash", script_, "start", ns_});
    ASSERT_EQ(boot.exit_code, 0) << boot.err << ReadFileOrEmpty(ns_ + "/console.log");
    booted_ = true;
    pid1_ = std::string(absl::StripAsciiWhitespace(ReadFileOrEmpty(ns_ + "/pid1")));
    port_ = FreePort();
    Install();
  }

  void TearDown() override {
    if (!booted_) {
      return;
    }
    if (HasFailure()) {
      std::cerr << "---- journal ----\n"
                << Exec({"journalctl", "--no-pager", "-u", "sprocket", "-n", "80"}).out << "\n";
    }
    RunCommand({"/bin/bash", script_, "stop", ns_});
    std::filesystem::remove_all(dir_);
  }

  void Install() {
    const std::string install = Runfile("sprocket/tools/install");
    // Where Bazel put the built files (laid out like bazel-bin), found from one of them.
    const std::string server = Runfile("sprocket/server/server");
    const std::string bin_dir = server.substr(0, server.size() - std::string("server/server").size());
    CommandResult r = Exec({"/bin/bash", install, "--bin-dir=" + bin_dir, "--prefix=" + dir_ + "/usr",
                            "--sysconfdir=" + dir_ + "/etc", "--unitdir=/etc/systemd/system",
                            "--dbusdir=/run/dbus-1/system.d",
                            absl::StrCat("--listen=127.0.0.1:", port_)});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // Tests wait seconds, not minutes: a fast watchdog and restart.
    r = Exec({"/bin/sh", "-c",
              "mkdir -p /etc/systemd/system/sprocket.service.d && printf '[Service]\\nWatchdogSec=2s\\n"
              "RestartSec=200ms\\n' > /etc/systemd/system/sprocket.service.d/test.conf"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(Exec({"systemctl", "daemon-reload"}).exit_code, 0);
    ASSERT_EQ(Exec({"systemctl", "reload", "dbus"}).exit_code, 0);
  }

  CommandResult Exec(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"/bin/bash", script_, "exec", ns_});
    return RunCommand(argv);
  }

  std::string Show(const std::string& property) {
    return std::string(absl::StripAsciiWhitespace(
        Exec({"systemctl", "show", "-p", property, "--value", "sprocket"}).out));
  }

  // The service's run dir as the host sees it (/run is private to the namespaces).
  std::string RunDir() const { return absl::StrCat("/proc/", pid1_, "/root/run/sprocket"); }

  pid_t PidFile(const std::string& name) const {
    pid_t pid = 0;
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFileOrEmpty(RunDir() + "/" + name)), &pid)
               ? pid
               : 0;
  }

  std::vector<SlotRecord> Slots() const {
    return ReadRegistry(RunDir()).value_or(std::vector<SlotRecord>{});
  }

  std::string Address() const { return absl::StrCat("127.0.0.1:", port_); }

  // `systemctl restart sprocket` while a client keeps opening connections: none may fail.
  void RestartUnderLoad() {
    ConnectLoop loop(Address());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_EQ(Exec({"systemctl", "restart", "sprocket"}).exit_code, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    loop.Stop();
    EXPECT_EQ(loop.failed_, 0) << loop.last_error_;
    EXPECT_GT(loop.ok_, 50);
  }

  void StartService() {
    CommandResult r = Exec({"systemctl", "start", "sprocket"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string dir_, ns_, script_, pid1_;
  int port_ = 0;
  bool booted_ = false;
};

TEST_F(SystemdTest, StartReturnsAfterReadyAndStatusShowsPidsAndTitles) {
  StartService();
  // READY=1 came only once every slot was running.
  std::vector<SlotRecord> slots = Slots();
  ASSERT_EQ(slots.size(), 5u);
  for (const SlotRecord& s : slots) {
    EXPECT_EQ(s.state, "running") << s.name << " " << s.index;
  }
  const pid_t master = PidFile("master.pid");
  EXPECT_EQ(Show("MainPID"), std::to_string(master));
  EXPECT_EQ(Show("ActiveState"), "active");
  const std::string expected_status = absl::StrCat(
      "2 workers, 3 processes running (testProcess ", PidFile("testProcess.0.pid"), " ",
      PidFile("testProcess.1.pid"), ", processReload ", PidFile("processReload.0.pid"),
      "); 0 restarts");
  EXPECT_EQ(Show("StatusText"), expected_status);
  CommandResult status = Exec({"systemctl", "status", "--no-pager", "-l", "sprocket"});
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("Status: \"", expected_status, "\"")));
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("Main PID: ", master)));
  for (const char* title : {"sprocket: master", "sprocket: manager", "sprocket: worker 0",
                            "sprocket: worker 1", "sprocket: process testProcess 0",
                            "sprocket: process testProcess 1", "sprocket: process processReload 0"}) {
    EXPECT_THAT(status.out, HasSubstr(absl::StrCat("\"", title, "\""))) << status.out;
  }
  absl::StatusOr<HttpReply> hello = HttpRequestOnce(Address(), "GET", "/");
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(hello->status, 200);
}

TEST_F(SystemdTest, ReloadReturnsWhenTheWorkersAreReplaced) {
  StartService();
  const pid_t w0 = PidFile("worker.0.pid"), w1 = PidFile("worker.1.pid");
  const pid_t p0 = PidFile("testProcess.0.pid");
  CommandResult r = Exec({"systemctl", "reload", "sprocket"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Already done when systemctl returned.
  EXPECT_NE(PidFile("worker.0.pid"), w0);
  EXPECT_NE(PidFile("worker.1.pid"), w1);
  EXPECT_EQ(PidFile("testProcess.0.pid"), p0) << "custom processes are not reloaded by default";
  EXPECT_THAT(Show("StatusText"), HasSubstr("last reload ok"));
  EXPECT_EQ(Show("ActiveState"), "active");
}

TEST_F(SystemdTest, AFailedReloadFailsSystemctlAndTheOldWorkersKeepServing) {
  const std::string unit = dir_ + "/libctl.so";
  ReplaceFile(Runfile("sprocket/tests/integration/units/libctl_v1.so"), unit);
  const std::string config_path = dir_ + "/etc/sprocket/sprocket.toml";
  WriteFile(config_path, absl::StrReplaceAll(ReadFileOrEmpty(config_path),
                                             {{"units = []", absl::StrCat("units = [\"", unit, "\"]")}}));
  StartService();
  absl::StatusOr<HttpReply> v1 = HttpRequestOnce(Address(), "GET", "/version");
  ASSERT_TRUE(v1.ok() && v1->status == 200) << v1.status();
  const pid_t w0 = PidFile("worker.0.pid");
  ReplaceFile(Runfile("sprocket/tests/integration/units/libno_entry.so"), unit);
  CommandResult r = Exec({"systemctl", "reload", "sprocket"});
  EXPECT_NE(r.exit_code, 0) << "systemctl reload must fail when the reload failed";
  EXPECT_EQ(PidFile("worker.0.pid"), w0);
  absl::StatusOr<HttpReply> still = HttpRequestOnce(Address(), "GET", "/version");
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->Json()["result"]["version"], "v1");
  EXPECT_EQ(Show("ActiveState"), "active");
  EXPECT_THAT(Show("StatusText"), HasSubstr("last reload failed"));
}

TEST_F(SystemdTest, KillTermRespawnsAProcessAndTheStatusFollows) {
  StartService();
  const pid_t master = PidFile("master.pid");
  const pid_t old = PidFile("testProcess.0.pid");
  ASSERT_EQ(Exec({"kill", "-TERM", std::to_string(old)}).exit_code, 0);
  pid_t now = 0;
  ASSERT_TRUE(WaitUntil([&] {
    now = PidFile("testProcess.0.pid");
    return now != 0 && now != old &&
           Show("StatusText").find(absl::StrCat("(testProcess ", now, " ")) != std::string::npos;
  }, std::chrono::seconds(3)));
  EXPECT_EQ(Show("MainPID"), std::to_string(master));
  EXPECT_EQ(Show("ActiveState"), "active");
  EXPECT_THAT(Show("StatusText"), HasSubstr("1 restart"));
}

TEST_F(SystemdTest, JournalPrioritiesLetWarningsBeFiltered) {
  StartService();
  // A process killed right after start died young: a warning from the manager.
  ASSERT_EQ(Exec({"kill", "-KILL", std::to_string(PidFile("testProcess.1.pid"))}).exit_code, 0);
  ASSERT_TRUE(WaitUntil([&] {
    return Exec({"journalctl", "--no-pager", "-u", "sprocket", "-p", "warning"}).out.find("died young") !=
           std::string::npos;
  }));
  const std::string warnings = Exec({"journalctl", "--no-pager", "-u", "sprocket", "-p", "warning"}).out;
  EXPECT_THAT(warnings, HasSubstr("sprocket: manager: "));
  EXPECT_THAT(warnings, Not(HasSubstr("started with arg"))) << "info lines are filtered out";
  EXPECT_THAT(Exec({"journalctl", "--no-pager", "-u", "sprocket"}).out,
              HasSubstr("sprocket: process testProcess 0: "));
}

TEST_F(SystemdTest, AWedgedManagerTripsTheWatchdogAndRestartBringsTheServiceBack) {
  StartService();
  const pid_t master = PidFile("master.pid");
  ASSERT_EQ(Exec({"kill", "-STOP", std::to_string(PidFile("manager.pid"))}).exit_code, 0);
  EXPECT_TRUE(WaitUntil([&] {
    return Show("NRestarts") == "1" && Show("ActiveState") == "active" &&
           Show("MainPID") != std::to_string(master) && Show("MainPID") != "0";
  }, std::chrono::seconds(15)));
  EXPECT_THAT(Exec({"journalctl", "--no-pager", "-u", "sprocket"}).out, HasSubstr("Watchdog timeout"));
  EXPECT_TRUE(WaitUntil([&] {
    std::vector<SlotRecord> slots = Slots();
    return slots.size() == 5 && std::all_of(slots.begin(), slots.end(), [](const SlotRecord& s) {
      return s.state == "running";
    });
  }));
}

TEST_F(SystemdTest, TheControlApiIsOnTheSystemBusUnderItsName) {
  StartService();
  CommandResult status = Exec({"busctl", "call", "org.sprocket.Server1", "/org/sprocket/Server",
                               "org.sprocket.Server1", "Status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("3 processes running"));
  CommandResult ctl = Exec({dir_ + "/usr/bin/sprocketctl", "--bus", "ps"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_THAT(ctl.out, HasSubstr("testProcess"));
  // The policy: anyone may read, only root may change things.
  const std::vector<std::string> nobody = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  std::vector<std::string> list = nobody;
  list.insert(list.end(), {"busctl", "call", "org.sprocket.Server1", "/org/sprocket/Server",
                           "org.sprocket.Server1", "ListProcesses"});
  EXPECT_EQ(Exec(list).exit_code, 0) << Exec(list).err;
  std::vector<std::string> restart = nobody;
  restart.insert(restart.end(), {"busctl", "call", "org.sprocket.Server1", "/org/sprocket/Server",
                                 "org.sprocket.Server1", "Restart", "s", "testProcess.0"});
  CommandResult denied = Exec(restart);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_THAT(denied.err, HasSubstr("ccess denied"));
}

TEST_F(SystemdTest, RestartWithTheFdStoreRefusesNoConnection) {
  StartService();
  const std::string master = Show("MainPID");
  RestartUnderLoad();
  EXPECT_NE(Show("MainPID"), master);
  EXPECT_THAT(Exec({"journalctl", "--no-pager", "-u", "sprocket"}).out,
              HasSubstr("socket(s) passed by systemd"));
}

TEST_F(SystemdTest, RestartWithSocketActivationRefusesNoConnection) {
  ASSERT_EQ(Exec({"systemctl", "start", "sprocket.socket"}).exit_code, 0);
  StartService();
  EXPECT_THAT(Exec({"journalctl", "--no-pager", "-u", "sprocket"}).out,
              HasSubstr("listening on 1 socket(s) passed by systemd"));
  RestartUnderLoad();
}

TEST_F(SystemdTest, StopLeavesNothingAndSucceeds) {
  StartService();
  ASSERT_EQ(Exec({"systemctl", "stop", "sprocket"}).exit_code, 0);
  EXPECT_EQ(Show("ActiveState"), "inactive");
  EXPECT_EQ(Show("Result"), "success");
  EXPECT_EQ(Show("MainPID"), "0");
  EXPECT_THAT(Exec({"ps", "-eo", "args"}).out, Not(HasSubstr("sprocket:")));
  EXPECT_FALSE(std::filesystem::exists(RunDir()));
  EXPECT_THAT(Exec({"journalctl", "--no-pager", "-u", "sprocket"}).out, HasSubstr("sprocket stopped"));
}

TEST_F(SystemdTest, UninstallRemovesEveryInstalledFile) {
  const std::string manifest = dir_ + "/usr/lib/sprocket/install-manifest";
  const std::string listed = ReadFileOrEmpty(manifest);
  ASSERT_THAT(listed, HasSubstr("/etc/systemd/system/sprocket.service"));
  CommandResult r = Exec({"/bin/bash", Runfile("sprocket/tools/install"), "--uninstall",
                          "--prefix=" + dir_ + "/usr"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/usr")) << "every folder the install made is gone";
  for (const char* path : {"/etc/systemd/system/sprocket.service", "/etc/systemd/system/sprocket.socket",
                           "/run/dbus-1/system.d/org.sprocket.Server1.conf"}) {
    EXPECT_NE(Exec({"test", "-e", path}).exit_code, 0) << path;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/etc/sprocket/sprocket.toml"));
}

}  // namespace
}  // namespace sprocket::testing
