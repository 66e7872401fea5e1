#include "process/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "process/channel.h"

namespace sprocket {

namespace fs = std::filesystem;

nlohmann::json ToJson(const SlotRecord& r) {
  return {{"kind", r.kind},       {"name", r.name},         {"group", r.group},
          {"index", r.index},     {"pid", r.pid},           {"start_time", r.start_time},
          {"started_at_ms", r.started_at_ms},
          {"state", r.state},     {"restarts", r.restarts}, {"last_exit", r.last_exit},
          {"reason", r.reason},   {"unit", r.unit}};
}

absl::StatusOr<SlotRecord> SlotRecordFromJson(const nlohmann::json& j) {
  try {
    SlotRecord r;
    r.kind = j.at("kind").get<std::string>();
    r.name = j.at("name").get<std::string>();
    r.group = j.at("group").get<std::string>();
    r.index = j.at("index").get<int>();
    r.pid = j.at("pid").get<pid_t>();
    r.start_time = j.at("start_time").get<std::uint64_t>();
    r.started_at_ms = j.at("started_at_ms").get<std::int64_t>();
    r.state = j.at("state").get<std::string>();
    r.restarts = j.at("restarts").get<int>();
    r.last_exit = j.at("last_exit").get<std::string>();
    r.reason = j.at("reason").get<std::string>();
    r.unit = j.at("unit").get<std::string>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed registry entry: ", e.what()));
  }
}

std::string DefaultRunDir() {
  if (const char* dir = std::getenv("RUNTIME_DIRECTORY"); dir != nullptr && *dir) {
    // systemd may list several dirs separated by ':'; ours is the first.
    const std::string dirs(dir);
    return dirs.substr(0, dirs.find(':'));
  }
  if (::geteuid() == 0) {
    return "/run/sprocket";
  }
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg) {
    return absl::StrCat(xdg, "/sprocket");
  }
  return absl::StrCat("/tmp/sprocket-", ::geteuid());
}

namespace {

absl::StatusOr<nlohmann::json> ReadRegistryDoc(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/", kRegistryJson);
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("no registry at ", path));
  }
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("slots") || !doc["slots"].is_array()) {
    return absl::DataLossError(absl::StrCat("malformed registry ", path));
  }
  return doc;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadRegistryListen(const std::string& dir) {
  absl::StatusOr<nlohmann::json> doc = ReadRegistryDoc(dir);
  if (!doc.ok()) {
    return doc.status();
  }
  std::vector<std::string> out;
  for (const nlohmann::json& a : doc->value("listen", nlohmann::json::array())) {
    if (a.is_string()) {
      out.push_back(a.get<std::string>());
    }
  }
  return out;
}

absl::StatusOr<std::vector<SlotRecord>> ReadRegistry(const std::string& dir) {
  absl::StatusOr<nlohmann::json> parsed = ReadRegistryDoc(dir);
  if (!parsed.ok()) {
    return parsed.status();
  }
  const nlohmann::json& doc = *parsed;
  std::vector<SlotRecord> out;
  for (const nlohmann::json& entry : doc["slots"]) {
    absl::StatusOr<SlotRecord> r = SlotRecordFromJson(entry);
    if (!r.ok()) {
      return r.status();
    }
    out.push_back(*std::move(r));
  }
  return out;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", tmp));
  }
  absl::Status status = WriteAll(fd.get(), contents);
  fd.Reset();
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) < 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("rename ", tmp, " to ", path));
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
  }
  return status;
}

absl::Status Registry::Write(const std::vector<SlotRecord>& slots) {
  nlohmann::json doc = {{"manager_pid", ::getpid()},
                        {"listen", listen_},
                        {"slots", nlohmann::json::array()}};
  for (const SlotRecord& r : slots) {
    doc["slots"].push_back(ToJson(r));
  }
  // processes.json first: whoever sees a new pid in NAME.INDEX.pid then finds it there too.
  if (absl::Status s = WriteFileAtomically(absl::StrCat(dir_, "/", kRegistryJson),
                                           doc.dump(2) + "\n");
      !s.ok()) {
    return s;
  }
  for (const SlotRecord& r : slots) {
    if (absl::Status s = WritePidFile(r); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Registry::WritePidFile(const SlotRecord& r) {
  const std::string file = absl::StrCat(r.name, ".", r.index, ".pid");
  auto it = pid_files_.find(file);
  const pid_t written = it == pid_files_.end() ? 0 : it->second;
  if (r.pid == written) {
    return absl::OkStatus();
  }
  const std::string path = absl::StrCat(dir_, "/", file);
  if (r.pid == 0) {
    ::unlink(path.c_str());
    pid_files_.erase(file);
    return absl::OkStatus();
  }
  if (absl::Status s = WriteFileAtomically(path, absl::StrCat(r.pid, "\n")); !s.ok()) {
    return s;
  }
  pid_files_[file] = r.pid;
  return absl::OkStatus();
}

void Registry::RemoveSlotFiles() {
  for (const auto& [file, pid] : pid_files_) {
    ::unlink(absl::StrCat(dir_, "/", file).c_str());
  }
  pid_files_.clear();
  ::unlink(absl::StrCat(dir_, "/", kRegistryJson).c_str());
}

namespace {

pid_t ReadPid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  pid_t pid = 0;
  if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)), &pid)) {
    return pid;
  }
  return 0;
}

}  // namespace

int RemoveRegistryFiles(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool stale = (absl::EndsWith(name, ".pid") && name != kMasterPidFile) ||
                       name == "control.sock" ||
                       absl::StartsWith(name, kRegistryJson) || absl::EndsWith(name, ".pid.tmp");
    if (stale && ::unlink(entry.path().c_str()) == 0) {
      ++removed;
    }
  }
  return removed;
}

namespace {

// The file we locked must still be the one at `path`: a master that is exiting unlinks
// master.pid while holding the lock, and a lock on that orphaned inode would protect nothing.
bool StillAtPath(int fd, const std::string& path) {
  struct stat held, named;
  return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
         held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

absl::StatusOr<UniqueFd> LockPidFile(const std::string& dir, const std::string& path) {
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) {
      return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
      if (errno == EWOULDBLOCK) {
        return absl::AlreadyExistsError(absl::StrFormat(
            "run dir %s is in use by a running sprocket master (pid %d); stop it or choose "
            "another --run_dir",
            dir, ReadPid(fd.get())));
      }
      return absl::ErrnoToStatus(errno, absl::StrCat("flock ", path));
    }
    if (StillAtPath(fd.get(), path)) {
      return fd;
    }
  }
}

}  // namespace

absl::StatusOr<RunDirLock> RunDirLock::Acquire(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrFormat("cannot create run dir %s: %s", dir, ec.message()));
  }
  const std::string path = absl::StrCat(dir, "/", kMasterPidFile);
  absl::StatusOr<UniqueFd> fd = LockPidFile(dir, path);
  if (!fd.ok()) {
    return fd.status();
  }
  RunDirLock lock(dir, *std::move(fd));
  lock.stale_pid_ = ReadPid(lock.fd_.get());
  lock.stale_files_ = RemoveRegistryFiles(dir);
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(lock.fd_.get(), 0) < 0 ||
      ::pwrite(lock.fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return absl::ErrnoToStatus(errno, absl::StrCat("write ", path));
  }
  return lock;
}

RunDirLock::~RunDirLock() {
  if (fd_) {
    ::unlink(absl::StrCat(dir_, "/", kMasterPidFile).c_str());
  }
}

}  // namespace sprocket
