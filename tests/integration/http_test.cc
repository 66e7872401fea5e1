// HTTP workers end to end: the real server, real worker processes, a real HTTP client.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/http_client.h"
#include "tests/integration/server_harness.h"

namespace sprocket::testing {
namespace {

using ::testing::HasSubstr;

std::string Unit(const std::string& name) {
  return Runfile(absl::StrCat("sprocket/tests/integration/units/lib", name, ".so"));
}

class HttpTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- server log ----\n" << server_.Log() << "--------------------\n";
    }
  }

  // Starts the server with the version unit's process "ver" x2, the default controllers plus
  // `units`, and `http_extra` lines in [http]; waits until every slot runs.
  void StartServer(const std::vector<std::string>& units = {}, const std::string& http_extra = "",
                   const std::string& process_extra = "") {
    std::string unit_list;
    for (const std::string& u : units) {
      unit_list += absl::StrCat(unit_list.empty() ? "" : ", ", "\"", u, "\"");
    }
    const std::string config = absl::StrCat(
        "[[process]]\nname = \"ver\"\ngroup = \"g\"\nunit = \"", Unit("version_a"),
        "\"\nclass = \"VersionProcess\"\ncount = 2\narg = { dir = \"", server_.dir(), "\" }\n",
        process_extra, "\n[http]\nworkers = 2\nunits = [", unit_list, "]\n", http_extra, "\n");
    ASSERT_TRUE(server_.Start(config).ok()) << server_.Log();
    for (const auto& [name, index] : {std::pair{"worker", 0}, {"worker", 1}, {"ver", 0}, {"ver", 1}}) {
      ASSERT_TRUE(server_.WaitForState(name, index, "running")) << name << " " << index;
    }
    address_ = server_.HttpAddress();
    ASSERT_FALSE(address_.empty());
  }

  std::set<pid_t> WorkerPids() const {
    return {server_.PidFile("worker", 0), server_.PidFile("worker", 1)};
  }

  HttpReply Get(const std::string& target) {
    absl::StatusOr<HttpReply> r = HttpRequestOnce(address_, "GET", target);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(HttpReply{});
  }

  HttpReply Post(const std::string& target, const std::string& body = "",
                 const std::map<std::string, std::string>& headers = {}) {
    absl::StatusOr<HttpReply> r = HttpRequestOnce(address_, "POST", target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or(HttpReply{});
  }

  ServerUnderTest server_;
  std::string address_;
};

TEST_F(HttpTest, RootSaysHelloFromAWorker) {
  StartServer();
  HttpReply r = Get("/");
  EXPECT_EQ(r.status, 200);
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["code"], 200);
  EXPECT_EQ(j["msg"], "ok");
  EXPECT_EQ(j["result"]["hello"], "sprocket");
  EXPECT_TRUE(WorkerPids().count(j["result"]["pid"].get<pid_t>()));
  EXPECT_EQ(r.headers["content-type"], "application/json");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(ReadFileOrEmpty(absl::StrCat("/proc/", server_.PidFile("worker", i), "/cmdline"))
                  .substr(0, 19),
              absl::StrCat("sprocket: worker ", i, std::string(1, '\0')).substr(0, 19));
  }
}

TEST_F(HttpTest, ProcessListsEverySlot) {
  StartServer();
  nlohmann::json j = Get("/process").Json();
  ASSERT_EQ(j["code"], 200);
  ASSERT_EQ(j["result"].size(), 4u);
  std::set<std::string> seen;
  for (const nlohmann::json& slot : j["result"]) {
    seen.insert(absl::StrCat(slot["kind"].get<std::string>(), ":", slot["name"].get<std::string>(),
                             ":", slot["index"].get<int>()));
    EXPECT_GT(slot["pid"].get<int>(), 0);
    EXPECT_EQ(slot["state"], "running");
    EXPECT_GE(slot["uptime_ms"].get<int64_t>(), 0);
    EXPECT_EQ(slot["restarts"], 0);
    EXPECT_EQ(slot["pid"].get<pid_t>(),
              server_.PidFile(slot["name"].get<std::string>(), slot["index"].get<int>()));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"worker:worker:0", "worker:worker:1", "process:ver:0",
                                         "process:ver:1"}));
}

TEST_F(HttpTest, RestartByPidRespawnsThatProcessOnly) {
  StartServer();
  const pid_t old0 = server_.PidFile("ver", 0);
  const pid_t old1 = server_.PidFile("ver", 1);
  HttpReply r = Post(absl::StrCat("/process/restart?pid=", old0));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["result"]["restarted"][0]["pid"], old0);
  EXPECT_TRUE(WaitUntil([&] {
    const pid_t now = server_.PidFile("ver", 0);
    return now != 0 && now != old0 && IsAlive(now);
  }, std::chrono::seconds(1)));
  EXPECT_EQ(server_.PidFile("ver", 1), old1);
  // The old pid is gone from the table: restarting it again is refused, even if reused.
  EXPECT_EQ(Post(absl::StrCat("/process/restart?pid=", old0)).status, 403);
}

TEST_F(HttpTest, RestartRefusesAForeignPidAndLeavesItAlive) {
  StartServer();
  const pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::execl("/bin/sleep", "sleep", "30", nullptr);
    ::_exit(127);
  }
  HttpReply r = Post(absl::StrCat("/process/restart?pid=", sleeper));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.Json()["code"], 403);
  EXPECT_THAT(r.Json()["msg"].get<std::string>(), HasSubstr("not a live process of this server"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(IsAlive(sleeper));
  // Nor the master or the manager, which are not slots.
  EXPECT_EQ(Post(absl::StrCat("/process/restart?pid=", server_.master())).status, 403);
  EXPECT_EQ(Post(absl::StrCat("/process/restart?pid=", server_.ManagerPid())).status, 403);
  EXPECT_TRUE(IsAlive(server_.ManagerPid()));
  ::kill(sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);
}

// A pid the kernel handed to another process after ours died: forced with ns_last_pid, which
// needs root in the test's pid namespace.
TEST_F(HttpTest, RestartRefusesAReusedPid) {
  StartServer();
  const pid_t old0 = server_.PidFile("ver", 0);
  ASSERT_EQ(Post(absl::StrCat("/process/restart?pid=", old0)).status, 200);
  ASSERT_TRUE(WaitUntil([&] { return !IsAlive(old0) && server_.PidFile("ver", 0) != old0; }));
  int fd = ::open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
  if (fd < 0) {
    GTEST_SKIP() << "cannot write /proc/sys/kernel/ns_last_pid (needs root in this pid "
                    "namespace): pid reuse cannot be forced here";
  }
  pid_t reused = -1;
  for (int attempt = 0; attempt < 20 && reused != old0; ++attempt) {
    const std::string last = std::to_string(old0 - 1);
    (void)::pwrite(fd, last.data(), last.size(), 0);
    reused = ::fork();
    if (reused == 0) {
      ::execl("/bin/sleep", "sleep", "30", nullptr);
      ::_exit(127);
    }
    if (reused != old0) {
      ::kill(reused, SIGKILL);
      ::waitpid(reused, nullptr, 0);
    }
  }
  ::close(fd);
  ASSERT_EQ(reused, old0) << "could not get pid " << old0 << " reused";
  HttpReply r = Post(absl::StrCat("/process/restart?pid=", old0));
  EXPECT_EQ(r.status, 403) << r.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(IsAlive(reused));
  ::kill(reused, SIGKILL);
  ::waitpid(reused, nullptr, 0);
}

TEST_F(HttpTest, RestartByNameIndexAndGroup) {
  StartServer();
  const pid_t old0 = server_.PidFile("ver", 0);
  const pid_t old1 = server_.PidFile("ver", 1);
  EXPECT_EQ(Post("/process/restart?name=ver&index=1").status, 200);
  ASSERT_TRUE(WaitUntil([&] { return server_.PidFile("ver", 1) != old1 && server_.PidFile("ver", 1) != 0; }));
  EXPECT_EQ(server_.PidFile("ver", 0), old0);
  const pid_t new1 = server_.PidFile("ver", 1);
  HttpReply r = Post("/process/restart?group=g");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Json()["result"]["restarted"].size(), 2u);
  EXPECT_TRUE(WaitUntil([&] {
    const pid_t a = server_.PidFile("ver", 0), b = server_.PidFile("ver", 1);
    return a != 0 && b != 0 && a != old0 && b != new1;
  }));
}

TEST_F(HttpTest, RestartErrorsAreClear) {
  StartServer();
  EXPECT_EQ(Post("/process/restart?name=nope").status, 404);
  EXPECT_EQ(Post("/process/restart?name=ver&index=7").status, 404);
  EXPECT_EQ(Post("/process/restart?group=nope").status, 404);
  HttpReply bad = Post("/process/restart?pid=12abc");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.Json()["msg"].get<std::string>(), HasSubstr("pid must be a positive integer"));
  EXPECT_EQ(Post("/process/restart?pid=-5").status, 400);
  EXPECT_EQ(Post("/process/restart?pid=99999999999").status, 400);
  EXPECT_EQ(Post("/process/restart").status, 400);
  EXPECT_EQ(Get("/process/restart?pid=1").status, 405);
}

TEST_F(HttpTest, SendDeliversTheBodyToOnPipeReadable) {
  StartServer();
  const pid_t pid = server_.PidFile("ver", 1);
  HttpReply r = Post("/process/send?name=ver&index=1", "hello, process");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["result"]["pid"], pid);
  EXPECT_TRUE(WaitUntil([&] {
    return ReadFileOrEmpty(absl::StrCat(server_.dir(), "/message.", pid)) == "hello, process\n";
  }));
  EXPECT_EQ(Post("/process/send?name=nope&index=0", "x").status, 404);
  EXPECT_EQ(Post("/process/send?name=ver&index=5", "x").status, 404);
  EXPECT_EQ(Post("/process/send?name=worker&index=0", "x").status, 404) << "workers take no messages";
  EXPECT_EQ(Post("/process/send", "x").status, 400);
}

TEST_F(HttpTest, AdminTokenGuardsMutatingRoutes) {
  StartServer({}, "admin_token = \"s3cret\"\n");
  const std::string target = absl::StrCat("/process/restart?pid=", server_.PidFile("ver", 0));
  EXPECT_EQ(Post(target).status, 401);
  EXPECT_EQ(Post(target, "", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(Post("/process/send?name=ver&index=0", "x").status, 401);
  EXPECT_EQ(Get("/process").status, 200) << "reading needs no token";
  EXPECT_EQ(Post(target, "", {{"Authorization", "Bearer s3cret"}}).status, 200);
}

TEST_F(HttpTest, BadRequestsGetJsonErrorsAndTheWorkerKeepsServing) {
  StartServer({Unit("ctl_v1")}, "max_body_bytes = 1024\nmax_header_bytes = 2048\n");
  const std::set<pid_t> workers = WorkerPids();
  EXPECT_EQ(Get("/nope").status, 404);
  EXPECT_EQ(Get("/nope").Json()["msg"], "no route for GET /nope");
  HttpReply wrong = Post("/");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "GET");
  HttpReply thrown = Get("/throw");
  EXPECT_EQ(thrown.status, 500);
  EXPECT_THAT(thrown.Json()["msg"].get<std::string>(), HasSubstr("handler exploded"));
  EXPECT_EQ(Post("/echo", std::string(2000, 'x')).status, 413);
  EXPECT_EQ(Post("/echo?q=a%20b+c", "body!").Json()["result"],
            (nlohmann::json{{"body", "body!"}, {"q", "a b c"}}));
  absl::StatusOr<HttpReply> garbage = SendRaw(address_, "GARBAGE\r\n\r\n");
  ASSERT_TRUE(garbage.ok()) << garbage.status();
  EXPECT_EQ(garbage->status, 400);
  EXPECT_EQ(garbage->Json()["code"], 400);
  EXPECT_FALSE(garbage->keep_alive);
  absl::StatusOr<HttpReply> bad_version = SendRaw(address_, "GET / HTTP/9\r\n\r\n");
  ASSERT_TRUE(bad_version.ok()) << bad_version.status();
  EXPECT_EQ(bad_version->status, 400);
  absl::StatusOr<HttpReply> huge = SendRaw(
      address_, absl::StrCat("GET / HTTP/1.1\r\nX-Big: ", std::string(4000, 'y'), "\r\n\r\n"));
  ASSERT_TRUE(huge.ok()) << huge.status();
  EXPECT_EQ(huge->status, 431);
  // Nothing crashed: the same workers answer.
  EXPECT_EQ(Get("/").status, 200);
  EXPECT_EQ(WorkerPids(), workers);
}

// Clients loop requests on keep-alive connections and count every failure.
class LoadLoop {
 public:
  LoadLoop(const std::string& address, int connections) {
    for (int i = 0; i < connections; ++i) {
      threads_.emplace_back([this, address] {
        HttpConnection c(address);
        while (!stop_) {
          absl::StatusOr<HttpReply> r = c.Request("GET", "/version");
          if (!r.ok() || r->status != 200) {
            ++failed_;
            last_error_ = r.ok() ? absl::StrCat("status ", r->status) : std::string(r.status().message());
            continue;
          }
          ++ok_;
          if (r->Json()["result"]["version"] == "v2") {
            ++v2_;
          }
        }
      });
    }
  }
  ~LoadLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
  std::atomic<int> ok_{0}, failed_{0}, v2_{0};
  std::string last_error_;

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

TEST_F(HttpTest, ReloadServesTheNewControllerWithZeroFailedRequests) {
  const std::string unit = server_.dir() + "/libctl.so";
  ReplaceFile(Unit("ctl_v1"), unit);
  StartServer({unit});
  const std::set<pid_t> before = WorkerPids();
  const pid_t process0 = server_.PidFile("ver", 0);
  LoadLoop load(address_, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ReplaceFile(Unit("ctl_v2"), unit);
  ASSERT_EQ(::kill(server_.master(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return server_.Log().find("reload finished") != std::string::npos; }));
  ASSERT_TRUE(WaitUntil([&] { return load.v2_ > 50; }));
  load.Stop();
  EXPECT_EQ(load.failed_, 0) << "last error: " << load.last_error_;
  EXPECT_GT(load.ok_, 200);
  EXPECT_EQ(Get("/version").Json()["result"]["version"], "v2");
  std::set<pid_t> after = WorkerPids();
  for (pid_t pid : after) {
    EXPECT_FALSE(before.count(pid)) << "worker pids all changed";
  }
  for (pid_t pid : before) {
    EXPECT_TRUE(WaitUntil([&] { return !IsAlive(pid); })) << "old worker " << pid << " drained";
  }
  EXPECT_EQ(server_.PidFile("ver", 0), process0) << "custom processes are kept by default";
}

TEST_F(HttpTest, ABadControllerUnitFailsTheReloadAndTheOldWorkersKeepServing) {
  const std::string unit = server_.dir() + "/libctl.so";
  ReplaceFile(Unit("ctl_v1"), unit);
  StartServer({unit});
  const std::set<pid_t> before = WorkerPids();
  LoadLoop load(address_, 2);
  ReplaceFile(Unit("no_entry"), unit);
  ASSERT_EQ(::kill(server_.master(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return server_.Log().find("reload failed") != std::string::npos; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  load.Stop();
  EXPECT_EQ(load.failed_, 0) << "last error: " << load.last_error_;
  EXPECT_GT(load.ok_, 20);
  EXPECT_EQ(WorkerPids(), before);
  EXPECT_THAT(server_.Log(), HasSubstr("has no sprocket_unit_entry"));
  EXPECT_THAT(server_.Log(), HasSubstr("the old worker keeps serving"));
  EXPECT_EQ(Get("/version").Json()["result"]["version"], "v1");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(server_.Slot("worker", i)->state, "running");
  }
}

TEST_F(HttpTest, AKeepAliveConnectionIsAnsweredThenClosedWhenItsWorkerDrains) {
  StartServer({}, "max_wait_time_ms = 5000\n");
  HttpConnection c(address_);
  absl::StatusOr<HttpReply> first = c.Request("GET", "/");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->keep_alive);
  const pid_t serving = first->Json()["result"]["pid"].get<pid_t>();
  ASSERT_EQ(::kill(server_.master(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return server_.Log().find("reload finished") != std::string::npos; }));
  // The old worker is draining and our idle connection is still open: its next request is
  // answered, with Connection: close.
  absl::StatusOr<HttpReply> second = c.Request("GET", "/");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(second->Json()["result"]["pid"], serving);
  EXPECT_FALSE(second->keep_alive);
  EXPECT_TRUE(WaitUntil([&] { return !IsAlive(serving); }));
  absl::StatusOr<HttpReply> third = c.Request("GET", "/");
  ASSERT_TRUE(third.ok());
  EXPECT_NE(third->Json()["result"]["pid"], serving);
  EXPECT_EQ(c.connects(), 2);
}

TEST_F(HttpTest, ReloadRestartsOptedInProcessesOnly) {
  StartServer({}, "", "reload = true\n");
  const pid_t old0 = server_.PidFile("ver", 0);
  const pid_t old1 = server_.PidFile("ver", 1);
  ASSERT_EQ(::kill(server_.master(), SIGHUP), 0);
  ASSERT_TRUE(WaitUntil([&] { return server_.Log().find("reload finished") != std::string::npos; }));
  EXPECT_NE(server_.PidFile("ver", 0), old0);
  EXPECT_NE(server_.PidFile("ver", 1), old1);
  EXPECT_EQ(server_.Slot("ver", 0)->state, "running");
}

TEST_F(HttpTest, AKilledWorkerIsRespawned) {
  StartServer();
  const pid_t old = server_.PidFile("worker", 1);
  ASSERT_EQ(::kill(old, SIGKILL), 0);
  EXPECT_TRUE(WaitUntil([&] {
    const pid_t now = server_.PidFile("worker", 1);
    return now != 0 && now != old && server_.Slot("worker", 1)->state == "running";
  }, std::chrono::seconds(2)));
  EXPECT_EQ(server_.Slot("worker", 1)->last_exit, "signal 9 (SIGKILL)");
  EXPECT_EQ(Get("/").status, 200);
}

}  // namespace
}  // namespace sprocket::testing
