#pragma once
// Each `kiln` subcommand is one function taking its own arguments (argv[0] is the
// subcommand name) and returning the process exit code. Errors a user can act on
// are thrown as exceptions and printed by main() as one line.
#include <string>
#include <vector>

namespace kiln::cli {

using Args = std::vector<std::string>;

int cmd_info(const Args& args);
int cmd_run(const Args& args);
int cmd_chat(const Args& args);
int cmd_perplexity(const Args& args);
int cmd_bench(const Args& args);
int cmd_serve(const Args& args);
int cmd_random_model(const Args& args);

}  // namespace kiln::cli
