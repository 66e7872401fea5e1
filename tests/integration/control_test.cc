// The control plane end to end: the real server, real busctl against the private socket, the
// real sprocketctl binary, and the D-Bus client library.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "systemd/control_client.h"
#include "tests/integration/server_harness.h"

namespace sprocket::testing {
namespace {

using ::testing::HasSubstr;

std::string Unit(const std::string& name) {
  return Runfile(absl::StrCat("sprocket/tests/integration/units/lib", name, ".so"));
}

class ControlTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- server log ----\n" << server_.Log() << "--------------------\n";
    }
  }

  // "ver" x2 (VersionProcess) plus `extra` TOML; waits for every process slot.
  void StartServer(const std::string& extra = "", const std::string& ver_extra = "") {
    const std::string config = absl::StrCat(
        "[[process]]\nname = \"ver\"\ngroup = \"g\"\nunit = \"", Unit("version_a"),
        "\"\nclass = \"VersionProcess\"\ncount = 2\narg = { dir = \"", server_.dir(), "\" }\n",
        ver_extra, "\n", extra);
    ASSERT_TRUE(server_.Start(config).ok()) << server_.Log();
    ASSERT_TRUE(server_.WaitForState("ver", 0, "running"));
    ASSERT_TRUE(server_.WaitForState("ver", 1, "running"));
  }

  std::string Socket() const { return server_.run_dir() + "/control.sock"; }

  CommandResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {Runfile("sprocket/tools/sprocketctl"),
                                      "--run_dir=" + server_.run_dir()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  CommandResult Busctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/busctl", "--address=unix:path=" + Socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  std::unique_ptr<ControlClient> Client() {
    absl::StatusOr<std::unique_ptr<ControlClient>> c = ControlClient::ConnectPrivate(Socket());
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  ServerUnderTest server_;
};

TEST_F(ControlTest, BusctlReachesTheApiOnThePrivateSocket) {
  StartServer();
  CommandResult status = Busctl({"call", "org.sprocket.Server1", "/org/sprocket/Server",
                                 "org.sprocket.Server1", "Status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("2 processes running (ver "));
  CommandResult list = Busctl({"call", "org.sprocket.Server1", "/org/sprocket/Server",
                               "org.sprocket.Server1", "ListProcesses"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr(absl::StrCat("\"process\" \"ver\" \"g\" 0 ",
                                               server_.PidFile("ver", 0), " \"running\"")));
  CommandResult introspect = Busctl({"introspect", "org.sprocket.Server1", "/org/sprocket/Server"});
  ASSERT_EQ(introspect.exit_code, 0) << introspect.err;
  for (const char* member : {".ListProcesses", ".Restart", ".Reload", ".Send", ".Status",
                             ".Stop", ".ProcessStarted", ".ProcessExited", ".ReloadFinished"}) {
    EXPECT_THAT(introspect.out, HasSubstr(member));
  }
  const pid_t old = server_.PidFile("ver", 1);
  CommandResult restart = Busctl({"call", "org.sprocket.Server1", "/org/sprocket/Server",
                                  "org.sprocket.Server1", "Restart", "s", "ver.1"});
  ASSERT_EQ(restart.exit_code, 0) << restart.err;
  EXPECT_EQ(restart.out, absl::StrCat("a(ssiu) 1 \"process\" \"ver\" 1 ", old, "\n"));
  EXPECT_TRUE(WaitUntil([&] { return server_.PidFile("ver", 1) != old && server_.PidFile("ver", 1) != 0; }));
}

TEST_F(ControlTest, TheSocketIsOpenToItsOwnerOnly) {
  StartServer();
  struct stat st;
  ASSERT_EQ(::stat(Socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to try the socket as another user";
  }
  // sprocketctl as nobody: a copy outside root's 0700 cache, so nobody may run it.
  char templ[] = "/tmp/sprocket-ctl-XXXXXX";
  const std::string dir = ::mkdtemp(templ);
  ::chmod(dir.c_str(), 0755);
  std::filesystem::copy_file(Runfile("sprocket/tools/sprocketctl"), dir + "/sprocketctl");
  ::chmod((dir + "/sprocketctl").c_str(), 0755);
  CommandResult r = RunCommand({dir + "/sprocketctl", "--run_dir=" + server_.run_dir(), "ps"},
                               /*uid=*/65534);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("permission denied"));
}

TEST_F(ControlTest, CtlPsStatusAndJson) {
  StartServer();
  CommandResult ps = Ctl({"ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  std::vector<std::string> lines = absl::StrSplit(ps.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << ps.out;  // header, 2 workers, 2 processes
  EXPECT_THAT(lines[0], HasSubstr("KIND"));
  EXPECT_THAT(lines[0], HasSubstr("MEMORY"));
  EXPECT_THAT(ps.out, HasSubstr(absl::StrCat(server_.PidFile("ver", 1), " running")));
  CommandResult json = Ctl({"ps", "--json"});
  ASSERT_EQ(json.exit_code, 0);
  nlohmann::json rows = nlohmann::json::parse(json.out);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_GT(rows[2]["rss_bytes"].get<uint64_t>(), 1000000u);
  CommandResult status = Ctl({"status"});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_EQ(status.out, absl::StrCat("2 workers, 2 processes running (ver ", server_.PidFile("ver", 0),
                                     " ", server_.PidFile("ver", 1), "); 0 restarts\n"));
}

TEST_F(ControlTest, CtlRestartAndItsErrors) {
  StartServer();
  const pid_t old = server_.PidFile("ver", 0);
  CommandResult ok = Ctl({"restart", "ver.0"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, absl::StrCat("restarting process ver 0 (pid ", old, ")\n"));
  EXPECT_TRUE(WaitUntil([&] { return server_.PidFile("ver", 0) != old && server_.PidFile("ver", 0) != 0; }));

  const pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::execl("/bin/sleep", "sleep", "30", nullptr);
    ::_exit(127);
  }
  CommandResult foreign = Ctl({"restart", std::to_string(sleeper)});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_THAT(foreign.err, HasSubstr("is not a live process of this server"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(IsAlive(sleeper));
  ::kill(sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);

  CommandResult unknown = Ctl({"restart", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "sprocketctl: no process or worker is named 'nope'\n");
  EXPECT_EQ(Ctl({"restart", "ver.9"}).err, "sprocketctl: 'ver' has no instance 9\n");
  CommandResult usage = Ctl({"restart"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("usage: sprocketctl"));
}

TEST_F(ControlTest, CtlReloadWaitsAndReportsFailure) {
  const std::string unit = server_.dir() + "/libctl.so";
  ReplaceFile(Unit("ctl_v1"), unit);
  StartServer(absl::StrCat("[http]\nunits = [\"", unit, "\"]\n"));
  ASSERT_TRUE(server_.WaitForState("worker", 0, "running"));
  const pid_t worker = server_.PidFile("worker", 0);
  CommandResult ok = Ctl({"reload"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "reload finished\n");
  EXPECT_NE(server_.PidFile("worker", 0), worker) << "returned only after the workers changed";
  const pid_t serving = server_.PidFile("worker", 0);
  ReplaceFile(Unit("no_entry"), unit);
  CommandResult failed = Ctl({"reload"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.err, HasSubstr("has no sprocket_unit_entry"));
  EXPECT_EQ(server_.PidFile("worker", 0), serving);
  EXPECT_THAT(Ctl({"status"}).out, HasSubstr("last reload failed: "));
}

TEST_F(ControlTest, CtlSendAndStop) {
  StartServer();
  const pid_t pid = server_.PidFile("ver", 1);
  CommandResult sent = Ctl({"send", "ver.1", "from ctl"});
  EXPECT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_EQ(sent.out, absl::StrCat("delivered to pid ", pid, "\n"));
  EXPECT_TRUE(WaitUntil([&] {
    return ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", pid)) == "from ctl\n";
  }));
  CommandResult unknown = Ctl({"send", "nope", "x"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no custom process nope.0"));
  CommandResult stop = Ctl({"stop"});
  EXPECT_EQ(stop.exit_code, 0);
  EXPECT_EQ(server_.WaitExit(std::chrono::seconds(5)), 0);
  CommandResult gone = Ctl({"status"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, HasSubstr("sprocket is not running"));
}

TEST_F(ControlTest, SendDuringARestartIsNotLost) {
  StartServer();
  std::unique_ptr<ControlClient> client = Client();
  ASSERT_TRUE(client);
  for (int round = 0; round < 5; ++round) {
    const pid_t old = server_.PidFile("ver", 0);
    ASSERT_EQ(::kill(old, SIGTERM), 0);
    const std::string message = absl::StrCat("round ", round);
    absl::StatusOr<std::pair<std::string, uint32_t>> sent = client->Send("ver.0", message);
    ASSERT_TRUE(sent.ok()) << sent.status();
    // Whoever got it — the old instance before it stopped, or the new one — has it once.
    ASSERT_TRUE(WaitUntil([&] {
      const pid_t now = server_.PidFile("ver", 0);
      return now != old && now != 0 &&
             (ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", now)).find(message) !=
                  std::string::npos ||
              ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", old)).find(message) !=
                  std::string::npos);
    })) << message << " was " << sent->first;
    if (sent->first == "queued") {
      EXPECT_THAT(ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", server_.PidFile("ver", 0))),
                  HasSubstr(message));
    }
  }
}

TEST_F(ControlTest, MessagesWaitForABackingOffProcessAndOverflowIsAnError) {
  const std::string unit = server_.dir() + "/libversion.so";
  ReplaceFile(Unit("version_a"), unit);
  const std::string config = absl::StrCat(
      "[[process]]\nname = \"q\"\nunit = \"", unit, "\"\nclass = \"VersionProcess\"\n",
      "max_queued_messages = 3\narg = { dir = \"", server_.dir(), "\" }\n",
      "[process.restart]\nbackoff_start_ms = 300\n");
  ASSERT_TRUE(server_.Start(config).ok());
  ASSERT_TRUE(server_.WaitForState("q", 0, "running"));
  std::filesystem::remove(unit);
  ASSERT_EQ(::kill(server_.PidFile("q", 0), SIGTERM), 0);
  ASSERT_TRUE(server_.WaitForState("q", 0, "backoff"));
  std::unique_ptr<ControlClient> client = Client();
  ASSERT_TRUE(client);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::pair<std::string, uint32_t>> sent = client->Send("q", absl::StrCat("m", i));
    ASSERT_TRUE(sent.ok()) << sent.status();
    EXPECT_EQ(sent->first, "queued");
  }
  absl::StatusOr<std::pair<std::string, uint32_t>> overflow = client->Send("q", "m3");
  EXPECT_EQ(overflow.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(overflow.status().message()), HasSubstr("queue full"));
  CommandResult ctl = Ctl({"send", "q", "m4"});
  EXPECT_EQ(ctl.exit_code, 1);
  EXPECT_THAT(ctl.err, HasSubstr("queue full"));
  ReplaceFile(Unit("version_a"), unit);  // the next try loads and gets the queue, in order
  ASSERT_TRUE(server_.WaitForState("q", 0, "running", std::chrono::seconds(5)));
  const pid_t pid = server_.PidFile("q", 0);
  EXPECT_TRUE(WaitUntil([&] {
    return ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", pid)) == "m0\nm1\nm2\n";
  })) << ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", pid));
}

TEST_F(ControlTest, AMessageUnacknowledgedByACrashedInstanceGoesToTheNextOne) {
  const std::string config = absl::StrCat(
      "[[process]]\nname = \"c\"\nunit = \"", Unit("behaviour"),
      "\"\nclass = \"CrashOnFirstMessage\"\narg = { dir = \"", server_.dir(), "\" }\n");
  ASSERT_TRUE(server_.Start(config).ok());
  ASSERT_TRUE(server_.WaitForState("c", 0, "running"));
  const pid_t first = server_.PidFile("c", 0);
  std::unique_ptr<ControlClient> client = Client();
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Send("c", "precious").ok());
  ASSERT_TRUE(WaitUntil([&] {
    const pid_t now = server_.PidFile("c", 0);
    return now != 0 && now != first &&
           ReadFileOrEmpty(absl::StrCat(server_.dir(), "/received.", now)) == "precious\n";
  }, std::chrono::seconds(3)));
  EXPECT_EQ(ReadFileOrEmpty(server_.dir() + "/crashed-once"), absl::StrCat(first, "\n"));
}

TEST_F(ControlTest, SignalsReportStartsExitsAndReloads) {
  StartServer();
  std::unique_ptr<ControlClient> client = Client();
  ASSERT_TRUE(client);
  const pid_t old = server_.PidFile("ver", 1);
  ASSERT_EQ(::kill(old, SIGTERM), 0);
  std::vector<std::string> seen;
  ASSERT_TRUE(client->WatchSignals(std::chrono::seconds(3), [&](const std::string& member,
                                                                const std::string& args) {
    // Other slots (the workers) may still be starting, and ver.1's own first start may reach
    // the bus after we connected: only the restart's story counts here.
    if (args.rfind("process ver 1 ", 0) != 0 ||
        (member == "ProcessStarted" && args == absl::StrCat("process ver 1 ", old))) {
      return false;
    }
    seen.push_back(member + " " + args);
    return member == "ProcessStarted";
  }).ok());
  ASSERT_EQ(seen.size(), 2u) << (seen.empty() ? "" : seen[0]);
  EXPECT_EQ(seen[0], absl::StrCat("ProcessExited process ver 1 ", old, " exit 0"));
  // The registry is written right after the signal goes out.
  EXPECT_TRUE(WaitUntil([&] {
    return seen[1] == absl::StrCat("ProcessStarted process ver 1 ", server_.PidFile("ver", 1));
  })) << seen[1];
}

TEST_F(ControlTest, ARunDirTooLongForASocketIsAClearError) {
  ServerUnderTest server;
  const std::string long_dir = "/tmp/" + std::string(120, 'd');
  const int code = server.RunToExit("", {"--run_dir=" + long_dir});
  EXPECT_EQ(code, 1);
  EXPECT_THAT(server.Log(), HasSubstr("over the 107 a unix socket allows"));
  std::filesystem::remove_all(long_dir);
}

}  // namespace
}  // namespace sprocket::testing
