// The `muonlab` command line: subcommand dispatch, argument parsing, --help texts. Each
// subcommand turns its arguments into a component's options struct and calls it; errors become
// one line on stderr and a non-zero exit code.
#pragma once

namespace muonlab {

// Entry point used by main(); returns the process exit code.
int run_cli(int argc, char** argv);

}  // namespace muonlab
