// File: process/process_title.h
//
// Process titles the way nginx sets them: the argv area is rewritten in place, so `ps`,
// `top` and the CGroup tree of `systemctl status` show "sprocket: manager" or
// "sprocket: process testProcess 0". prctl(PR_SET_NAME) alone changes only the 15-byte comm,
// which systemd does not show. The environment strings that follow argv are moved to the heap
// first, so the whole contiguous area can hold the title.
//
//   int main(int argc, char** argv) {
//     std::vector<std::string> args = InitProcessTitle(argc, argv);  // copies; argv is reused
//     SetProcessTitle("sprocket: master");
//
// Limits: InitProcessTitle once, in main, before anything keeps pointers into argv or environ.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sprocket {

// Copies argv, moves environ to the heap, and returns the copied arguments.
std::vector<std::string> InitProcessTitle(int argc, char** argv);

// Sets the title (truncated to the available space) and the comm name.
void SetProcessTitle(std::string_view title);

// The last title set ("sprocket: worker 0"), or "sprocket" before any; for log prefixes.
const char* CurrentProcessTitle();

}  // namespace sprocket
