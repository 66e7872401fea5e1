// File: server/config.cc
//
// Loading and validation of the server config (server/config.h). Runs in the master, before
// anything is forked. toml11 reports through exceptions; LoadConfigFile() is the one place they
// become absl::Status, so nothing below it throws on purpose: every value's type is checked
// before it is read.
#include "server/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <toml.hpp>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace sprocket {
namespace {

// std::map instead of toml11's default unordered_map: when a table has several bad fields, the
// one reported is the same on every run (the first in key order).
using TomlValue = toml::basic_value<toml::discard_comments, std::map, std::vector>;

constexpr int kMaxCount = 10000;

// ---------------------------------------------------------------------------------------------
// Validation shared by ValidateConfig() and LoadConfigFile(). It names fields by their TOML
// names, which operators know; the loader turns the name back into a file line.

// A rule a registration breaks. `field` is the TOML path, e.g. "count" or "restart.backoff_max_ms".
struct FieldError {
  std::string field;
  std::string message;
};

// "process 'jobs'", or "process #2" (1-based) when the name is missing: errors must say which
// registration they are about even before the name is known to be usable.
std::string ProcessLabel(const ProcessConfig& p, size_t index) {
  if (!p.name.empty()) {
    return absl::StrFormat("process '%s'", p.name);
  }
  return absl::StrFormat("process #%d", index + 1);
}

// Names become file names (NAME.INDEX.pid) and parts of bus paths, so keep them to a safe set.
bool IsValidName(absl::string_view name) {
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return false;
    }
  }
  return !name.empty();
}

// Only existence is checked here; whether it is a loadable unit is the manager's dlopen's call.
std::optional<std::string> CheckUnitFile(const std::string& unit) {
  struct stat st;
  if (::stat(unit.c_str(), &st) == 0) {
    return std::nullopt;
  }
  if (errno == ENOENT || errno == ENOTDIR) {
    return absl::StrCat("unit file not found: ", unit);
  }
  return std::string(
      absl::ErrnoToStatus(errno, absl::StrCat("cannot stat unit file ", unit)).message());
}

// Name, class and unit: what says which code runs.
std::optional<FieldError> CheckIdentity(const ProcessConfig& p) {
  if (p.name.empty()) {
    return FieldError{"name", "is required"};
  }
  if (!IsValidName(p.name)) {
    return FieldError{"name", absl::StrFormat("must contain only [A-Za-z0-9_-], got '%s'", p.name)};
  }
  if (p.class_name.empty()) {
    return FieldError{"class", "is required"};
  }
  if (p.unit.empty()) {
    return FieldError{"unit", "is required"};
  }
  if (std::optional<std::string> error = CheckUnitFile(p.unit)) {
    return FieldError{"unit", *std::move(error)};
  }
  return std::nullopt;
}

// Count, shutdown bound and restart policy: numbers the manager's timers and slots rely on.
std::optional<FieldError> CheckLimits(const ProcessConfig& p) {
  const RestartPolicy& r = p.restart;
  if (p.count < 1) {
    return FieldError{"count", absl::StrFormat("must be a positive integer, got %d", p.count)};
  }
  if (p.count > kMaxCount) {
    return FieldError{"count", absl::StrFormat("must be at most %d, got %d", kMaxCount, p.count)};
  }
  if (p.max_exit_wait.count() <= 0) {
    return FieldError{"max_exit_wait_ms",
                      absl::StrFormat("must be positive, got %d", p.max_exit_wait.count())};
  }
  if (r.backoff_start.count() <= 0) {
    return FieldError{"restart.backoff_start_ms",
                      absl::StrFormat("must be positive, got %d", r.backoff_start.count())};
  }
  if (r.backoff_max < r.backoff_start) {
    return FieldError{"restart.backoff_max_ms",
                      absl::StrFormat("must be >= restart.backoff_start_ms (%d), got %d",
                                      r.backoff_start.count(), r.backoff_max.count())};
  }
  if (r.stable_after.count() < 0) {
    return FieldError{"restart.stable_after_ms",
                      absl::StrFormat("must not be negative, got %d", r.stable_after.count())};
  }
  if (r.give_up_after < 0) {
    return FieldError{"restart.give_up_after",
                      absl::StrFormat("must not be negative, got %d", r.give_up_after)};
  }
  if (p.max_queued_messages < 0 || p.max_queued_messages > 1000000) {
    return FieldError{"max_queued_messages", absl::StrFormat("must be from 0 to 1000000, got %d",
                                                             p.max_queued_messages)};
  }
  return std::nullopt;
}

std::optional<FieldError> CheckProcess(const ProcessConfig& p) {
  if (std::optional<FieldError> error = CheckIdentity(p)) {
    return error;
  }
  return CheckLimits(p);
}

// Indexes (first, second) of the first name used twice.
std::optional<std::pair<size_t, size_t>> FindDuplicateName(
    const std::vector<ProcessConfig>& processes) {
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < processes.size(); ++i) {
    auto [it, inserted] = seen.emplace(processes[i].name, i);
    if (!inserted) {
      return std::make_pair(it->second, i);
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// toml11 errors.

// toml11's what() is a multi-line report:
//   [error] toml::parse_key_value_pair: missing value after key-value separator '='
//    --> sprocket.toml
//      |
//    2 | b =
//      |     ^--- expected value, but got nothing
// The exception's own location() is not always the failing line (a bad date reports line 1 while
// the report points at the date), so the line comes from the report: its last numbered source
// line, which is the one the error points at (earlier ones are "first defined here" context).
struct TomlReport {
  std::string message;
  int line = 0;
  std::string note;
};

// Reads one report line; `expect_note` is set after a numbered source line, whose next line
// carries the "^--- note" marker.
void ReadReportLine(absl::string_view text, bool& expect_note, TomlReport& report) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('|', 1));
  const bool has_bar = parts.first.size() < text.size();
  int line = 0;
  if (has_bar && absl::SimpleAtoi(absl::StripAsciiWhitespace(parts.first), &line)) {
    report.line = line;
    expect_note = true;
    return;
  }
  if (has_bar && expect_note && absl::StripAsciiWhitespace(parts.first).empty()) {
    absl::string_view note = absl::StripLeadingAsciiWhitespace(parts.second);
    note.remove_prefix(std::min(note.find_first_not_of("^~-"), note.size()));
    note = absl::StripAsciiWhitespace(note);
    absl::ConsumeSuffix(&note, ".");
    report.note = std::string(note);
  }
  expect_note = false;
}

TomlReport ParseTomlReport(absl::string_view what) {
  std::vector<absl::string_view> lines = absl::StrSplit(what, '\n');
  TomlReport report;
  absl::string_view first = lines.empty() ? what : lines.front();
  absl::ConsumePrefix(&first, "[error] ");
  // Drop the parser function's name ("toml::parse_key_value_pair: "): it means nothing to users.
  if (absl::StartsWith(first, "toml::") && first.find(": ") != absl::string_view::npos) {
    first.remove_prefix(first.find(": ") + 2);
  }
  absl::ConsumeSuffix(&first, ".");
  report.message = std::string(first);
  bool expect_note = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    ReadReportLine(lines[i], expect_note, report);
  }
  return report;
}

// One line: "FILE:LINE: message (note)".
absl::Status CompactTomlError(const std::string& path, const toml::exception& e) {
  TomlReport report = ParseTomlReport(e.what());
  int line = report.line > 0 ? report.line : static_cast<int>(e.location().line());
  std::string note;
  if (!report.note.empty() && report.note != "here") {
    note = absl::StrCat(" (", report.note, ")");
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("%s:%d: %s%s", path, line, report.message, note));
}

// ---------------------------------------------------------------------------------------------
// Reading values.

// "FILE:LINE: what", with the line of `v`.
absl::Status ErrorAt(const TomlValue& v, absl::string_view what) {
  toml::source_location loc = v.location();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s:%d: %s", loc.file_name(), loc.line(), what));
}

// Names a field in messages: "process 'jobs': field 'restart.backoff_max_ms'".
struct FieldName {
  std::string label;  // Empty at the top level.
  std::string path;

  std::string ToString() const {
    std::string field = absl::StrFormat("field '%s'", path);
    return label.empty() ? field : absl::StrCat(label, ": ", field);
  }
};

absl::Status TypeError(const TomlValue& v, const FieldName& f, absl::string_view expected) {
  return ErrorAt(v, absl::StrFormat("%s: must be %s, got %s", f.ToString(), expected,
                                    toml::stringize(v.type())));
}

absl::Status ReadString(const TomlValue& v, const FieldName& f, std::string& out) {
  if (!v.is_string()) {
    return TypeError(v, f, "a string");
  }
  out = v.as_string().str;
  return absl::OkStatus();
}

absl::Status ReadBool(const TomlValue& v, const FieldName& f, bool& out) {
  if (!v.is_boolean()) {
    return TypeError(v, f, "a boolean");
  }
  out = v.as_boolean();
  return absl::OkStatus();
}

// Range rules (count >= 1, ...) are CheckLimits()'s; this only keeps the int64 from wrapping.
absl::Status ReadInt(const TomlValue& v, const FieldName& f, int& out) {
  if (!v.is_integer()) {
    return TypeError(v, f, "an integer");
  }
  toml::integer i = v.as_integer();
  if (i < INT_MIN || i > INT_MAX) {
    return ErrorAt(v, absl::StrFormat("%s: out of range, got %d", f.ToString(), i));
  }
  out = static_cast<int>(i);
  return absl::OkStatus();
}

absl::Status ReadMillis(const TomlValue& v, const FieldName& f, std::chrono::milliseconds& out) {
  if (!v.is_integer()) {
    return TypeError(v, f, "an integer (milliseconds)");
  }
  out = std::chrono::milliseconds(v.as_integer());
  return absl::OkStatus();
}

nlohmann::json ToJson(const TomlValue& v);

nlohmann::json ArrayToJson(const TomlValue& v) {
  nlohmann::json out = nlohmann::json::array();
  for (const TomlValue& element : v.as_array()) {
    out.push_back(ToJson(element));
  }
  return out;
}

nlohmann::json TableToJson(const TomlValue& v) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, element] : v.as_table()) {
    out[key] = ToJson(element);
  }
  return out;
}

// JSON has no datetimes: they are handed to Run() in their TOML string form.
nlohmann::json ToJson(const TomlValue& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return v.as_boolean();
    case toml::value_t::integer:
      return v.as_integer();
    case toml::value_t::floating:
      return v.as_floating();
    case toml::value_t::string:
      return v.as_string().str;
    case toml::value_t::array:
      return ArrayToJson(v);
    case toml::value_t::table:
      return TableToJson(v);
    case toml::value_t::empty:
      return nullptr;
    default:
      return toml::format(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading [[process]] tables. Each known field has a reader; any other key is an error, because a
// typo would otherwise silently keep the default.

template <typename T>
using FieldReaderOf = absl::Status (*)(const TomlValue&, const FieldName&, T&);
using FieldReader = FieldReaderOf<ProcessConfig>;

const std::map<std::string, FieldReader>& RestartFields() {
  static const auto* const kFields = new std::map<std::string, FieldReader>{
      {"backoff_start_ms",
       [](const TomlValue& v, const FieldName& f, ProcessConfig& p) {
         return ReadMillis(v, f, p.restart.backoff_start);
       }},
      {"backoff_max_ms", [](const TomlValue& v, const FieldName& f,
                            ProcessConfig& p) { return ReadMillis(v, f, p.restart.backoff_max); }},
      {"stable_after_ms",
       [](const TomlValue& v, const FieldName& f, ProcessConfig& p) {
         return ReadMillis(v, f, p.restart.stable_after);
       }},
      {"give_up_after", [](const TomlValue& v, const FieldName& f,
                           ProcessConfig& p) { return ReadInt(v, f, p.restart.give_up_after); }},
  };
  return *kFields;
}

// Reads each key of `table` with its reader from `fields`; sub-fields are named "PREFIX.KEY".
template <typename T>
absl::Status ReadFields(const TomlValue& table,
                        const std::map<std::string, FieldReaderOf<T>>& fields,
                        const FieldName& parent, T& p) {
  for (const auto& [key, value] : table.as_table()) {
    FieldName f{parent.label, parent.path.empty() ? key : absl::StrCat(parent.path, ".", key)};
    auto it = fields.find(key);
    if (it == fields.end()) {
      return ErrorAt(value, absl::StrFormat("%s: unknown field '%s'", f.label, f.path));
    }
    if (absl::Status status = it->second(value, f, p); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadRestart(const TomlValue& v, const FieldName& f, ProcessConfig& p) {
  if (!v.is_table()) {
    return TypeError(v, f, "a table ([process.restart])");
  }
  return ReadFields(v, RestartFields(), f, p);
}

const std::map<std::string, FieldReader>& ProcessFields() {
  static const auto* const kFields = new std::map<std::string, FieldReader>{
      {"name", [](const TomlValue& v, const FieldName& f,
                  ProcessConfig& p) { return ReadString(v, f, p.name); }},
      {"group", [](const TomlValue& v, const FieldName& f,
                   ProcessConfig& p) { return ReadString(v, f, p.group); }},
      {"unit", [](const TomlValue& v, const FieldName& f,
                  ProcessConfig& p) { return ReadString(v, f, p.unit); }},
      {"class", [](const TomlValue& v, const FieldName& f,
                   ProcessConfig& p) { return ReadString(v, f, p.class_name); }},
      {"count", [](const TomlValue& v, const FieldName& f,
                   ProcessConfig& p) { return ReadInt(v, f, p.count); }},
      {"arg",
       [](const TomlValue& v, const FieldName&, ProcessConfig& p) {
         p.arg = ToJson(v);
         return absl::OkStatus();
       }},
      {"max_exit_wait_ms", [](const TomlValue& v, const FieldName& f,
                              ProcessConfig& p) { return ReadMillis(v, f, p.max_exit_wait); }},
      {"reload", [](const TomlValue& v, const FieldName& f,
                    ProcessConfig& p) { return ReadBool(v, f, p.reload); }},
      {"max_queued_messages", [](const TomlValue& v, const FieldName& f,
                                 ProcessConfig& p) { return ReadInt(v, f, p.max_queued_messages); }},
      {"restart", ReadRestart},
  };
  return *kFields;
}

// ---------------------------------------------------------------------------------------------
// The [http] table.

absl::Status ReadStrings(const TomlValue& v, const FieldName& f, std::vector<std::string>& out) {
  if (!v.is_array()) {
    return TypeError(v, f, "an array of strings");
  }
  out.clear();
  for (const TomlValue& element : v.as_array()) {
    std::string s;
    if (absl::Status status = ReadString(element, f, s); !status.ok()) {
      return status;
    }
    out.push_back(std::move(s));
  }
  return absl::OkStatus();
}

absl::Status ReadSize(const TomlValue& v, const FieldName& f, std::size_t& out) {
  if (!v.is_integer() || v.as_integer() < 0) {
    return TypeError(v, f, "a non-negative integer (bytes)");
  }
  out = static_cast<std::size_t>(v.as_integer());
  return absl::OkStatus();
}

using HttpReader = FieldReaderOf<HttpConfig>;

const std::map<std::string, HttpReader>& HttpFields() {
  static const auto* const kFields = new std::map<std::string, HttpReader>{
      {"listen", [](const TomlValue& v, const FieldName& f,
                    HttpConfig& h) { return ReadStrings(v, f, h.listen); }},
      {"workers", [](const TomlValue& v, const FieldName& f,
                     HttpConfig& h) { return ReadInt(v, f, h.workers); }},
      {"units", [](const TomlValue& v, const FieldName& f,
                   HttpConfig& h) { return ReadStrings(v, f, h.units); }},
      {"max_wait_time_ms", [](const TomlValue& v, const FieldName& f,
                              HttpConfig& h) { return ReadMillis(v, f, h.max_wait_time); }},
      {"admin_token", [](const TomlValue& v, const FieldName& f,
                         HttpConfig& h) { return ReadString(v, f, h.admin_token); }},
      {"max_body_bytes", [](const TomlValue& v, const FieldName& f,
                            HttpConfig& h) { return ReadSize(v, f, h.max_body_bytes); }},
      {"max_header_bytes", [](const TomlValue& v, const FieldName& f,
                              HttpConfig& h) { return ReadSize(v, f, h.max_header_bytes); }},
      {"max_connections", [](const TomlValue& v, const FieldName& f,
                             HttpConfig& h) { return ReadInt(v, f, h.max_connections); }},
      {"keep_alive_timeout_ms",
       [](const TomlValue& v, const FieldName& f, HttpConfig& h) {
         return ReadMillis(v, f, h.keep_alive_timeout);
       }},
      {"request_timeout_ms", [](const TomlValue& v, const FieldName& f,
                                HttpConfig& h) { return ReadMillis(v, f, h.request_timeout); }},
  };
  return *kFields;
}

// The rule an [http] table breaks, by TOML field name.
std::optional<FieldError> CheckHttp(const HttpConfig& h) {
  if (h.workers < 0 || h.workers > 1024) {
    return FieldError{"workers", absl::StrFormat("must be from 0 to 1024, got %d", h.workers)};
  }
  if (h.workers > 0 && h.listen.empty()) {
    return FieldError{"listen", "must name at least one HOST:PORT when workers > 0"};
  }
  for (const std::string& address : h.listen) {
    if (absl::StatusOr<std::pair<std::string, int>> a = ParseListenAddress(address); !a.ok()) {
      return FieldError{"listen", std::string(a.status().message())};
    }
  }
  for (const std::string& unit : h.units) {
    if (std::optional<std::string> problem = CheckUnitFile(unit)) {
      return FieldError{"units", *problem};
    }
  }
  if (h.max_wait_time.count() <= 0 || h.keep_alive_timeout.count() <= 0 ||
      h.request_timeout.count() <= 0) {
    return FieldError{"max_wait_time_ms", "timeouts must be positive"};
  }
  if (h.max_connections < 1 || h.max_header_bytes < 256) {
    return FieldError{"max_connections", "max_connections must be >= 1, max_header_bytes >= 256"};
  }
  return std::nullopt;
}

absl::Status ReadHttp(const TomlValue& v, const std::filesystem::path& config_dir,
                      HttpConfig& http);

// The value at a dotted field path, or the innermost table on the way when it is not set: a
// missing field is reported at its [[process]] (or [process.restart]) header.
const TomlValue& LocateField(const TomlValue& table, absl::string_view path) {
  const TomlValue* at = &table;
  for (absl::string_view key : absl::StrSplit(path, '.')) {
    if (!at->is_table() || !at->contains(std::string(key))) {
      break;
    }
    at = &at->as_table().at(std::string(key));
  }
  return *at;
}

// Relative to the config file, not to the master's working directory (systemd starts us in /).
std::string ResolveUnit(const std::filesystem::path& config_dir, const std::string& unit) {
  if (unit.empty() || std::filesystem::path(unit).is_absolute()) {
    return unit;
  }
  return (config_dir / unit).lexically_normal().string();
}

absl::Status ReadHttp(const TomlValue& v, const std::filesystem::path& config_dir,
                      HttpConfig& http) {
  if (!v.is_table()) {
    return TypeError(v, {"", "http"}, "a table ([http])");
  }
  if (absl::Status status = ReadFields(v, HttpFields(), FieldName{"http", ""}, http);
      !status.ok()) {
    return status;
  }
  for (std::string& unit : http.units) {
    unit = ResolveUnit(config_dir, unit);
  }
  if (std::optional<FieldError> error = CheckHttp(http)) {
    return ErrorAt(LocateField(v, error->field),
                   absl::StrFormat("http: field '%s': %s", error->field, error->message));
  }
  return absl::OkStatus();
}

// The label before the fields are read, so type errors already name the process.
std::string TableLabel(const TomlValue& table, size_t index) {
  ProcessConfig p;
  if (table.contains("name") && table.as_table().at("name").is_string()) {
    p.name = table.as_table().at("name").as_string().str;
  }
  return ProcessLabel(p, index);
}

absl::StatusOr<ProcessConfig> ParseProcess(const TomlValue& table, size_t index,
                                           const std::filesystem::path& config_dir) {
  if (!table.is_table()) {
    return ErrorAt(table, absl::StrFormat("process #%d: must be a table ([[process]]), got %s",
                                          index + 1, toml::stringize(table.type())));
  }
  ProcessConfig p;
  if (absl::Status status = ReadFields(table, ProcessFields(), {TableLabel(table, index), ""}, p);
      !status.ok()) {
    return status;
  }
  p.unit = ResolveUnit(config_dir, p.unit);
  if (std::optional<FieldError> error = CheckProcess(p)) {
    return ErrorAt(LocateField(table, error->field),
                   absl::StrFormat("%s: field '%s': %s", ProcessLabel(p, index), error->field,
                                   error->message));
  }
  return p;
}

absl::Status ReadProcesses(const TomlValue& v, const std::filesystem::path& config_dir,
                           std::vector<ProcessConfig>& out) {
  if (!v.is_array()) {
    return TypeError(v, {"", "process"}, "an array of tables ([[process]])");
  }
  const std::vector<TomlValue>& tables = v.as_array();
  for (size_t i = 0; i < tables.size(); ++i) {
    absl::StatusOr<ProcessConfig> p = ParseProcess(tables[i], i, config_dir);
    if (!p.ok()) {
      return p.status();
    }
    out.push_back(*std::move(p));
  }
  if (std::optional<std::pair<size_t, size_t>> dup = FindDuplicateName(out)) {
    // Both tables are in this file, so the first one's line is enough.
    const int first_line = LocateField(tables[dup->first], "name").location().line();
    return ErrorAt(
        LocateField(tables[dup->second], "name"),
        absl::StrFormat("process '%s': field 'name': duplicate name, first used on line %d",
                        out[dup->second].name, first_line));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> BuildConfig(const TomlValue& root,
                                         const std::filesystem::path& config_dir) {
  ServerConfig config;
  for (const auto& [key, value] : root.as_table()) {
    absl::Status status;
    if (key == "run_dir") {
      status = ReadString(value, {"", key}, config.run_dir);
    } else if (key == "process") {
      status = ReadProcesses(value, config_dir, config.processes);
    } else if (key == "http") {
      config.has_http = true;
      status = ReadHttp(value, config_dir, config.http);
    } else {
      status = ErrorAt(value, absl::StrFormat("unknown field '%s'", key));
    }
    if (!status.ok()) {
      return status;
    }
  }
  return config;
}

// toml::parse opens the file with an ifstream, which "opens" a directory and reports a missing
// file without errno; stat first so those errors say what is wrong.
absl::Status CheckConfigFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::ErrnoToStatus(errno, path).message());
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
  }
  return absl::OkStatus();
}

std::filesystem::path ConfigDir(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return (ec ? std::filesystem::path(path) : absolute).parent_path();
}

}  // namespace

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  if (absl::Status status = CheckConfigFile(path); !status.ok()) {
    return status;
  }
  try {
    const TomlValue root = toml::parse<toml::discard_comments, std::map, std::vector>(path);
    return BuildConfig(root, ConfigDir(path));
  } catch (const toml::exception& e) {
    return CompactTomlError(path, e);
  } catch (const std::exception& e) {
    // toml::parse's own open error, or a bug of ours; either way the API does not throw.
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::Status ValidateConfig(const ServerConfig& config) {
  const std::vector<ProcessConfig>& processes = config.processes;
  for (size_t i = 0; i < processes.size(); ++i) {
    if (std::optional<FieldError> error = CheckProcess(processes[i])) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: field '%s': %s", ProcessLabel(processes[i], i), error->field, error->message));
    }
  }
  if (std::optional<std::pair<size_t, size_t>> dup = FindDuplicateName(processes)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("process '%s': field 'name': duplicate name (registrations #%d and #%d)",
                        processes[dup->second].name, dup->first + 1, dup->second + 1));
  }
  if (std::optional<FieldError> error = CheckHttp(config.http)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("http: field '%s': %s", error->field, error->message));
  }
  return absl::OkStatus();
}

void MergeConfig(ServerConfig& base, ServerConfig extra) {
  if (!extra.run_dir.empty()) {
    base.run_dir = std::move(extra.run_dir);
  }
  base.processes.insert(base.processes.end(), std::make_move_iterator(extra.processes.begin()),
                        std::make_move_iterator(extra.processes.end()));
  if (extra.has_http) {
    std::vector<std::string> units = std::move(base.http.units);
    units.insert(units.end(), extra.http.units.begin(), extra.http.units.end());
    base.http = std::move(extra.http);
    base.http.units = std::move(units);
    base.has_http = true;
  }
}

absl::StatusOr<std::pair<std::string, int>> ParseListenAddress(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not HOST:PORT (e.g. 127.0.0.1:9501 or [::1]:9501)", address));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s': the port must be a number from 0 to 65535", address));
  }
  return std::make_pair(host, port);
}

}  // namespace sprocket
