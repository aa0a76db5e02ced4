// Quoting arguments for shell command lines: the `muonlab train` commands the sweep index shows
// and the plot script compare runs through /bin/sh. It does not split or parse command lines.
#pragma once
#include <string>

namespace muonlab {

// `arg` as one POSIX shell word: unchanged when it holds only characters the shell never
// interprets (letters, digits, _-.,/=:+), otherwise in single quotes with embedded ' escaped.
std::string shell_quoted(const std::string& arg);

}  // namespace muonlab
