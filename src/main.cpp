// The muonlab binary: all logic lives in the libraries; see src/cli.h.
#include "src/cli.h"

int main(int argc, char** argv) { return muonlab::run_cli(argc, argv); }
