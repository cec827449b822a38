// The only main() of kiln: dispatches to subcommands.
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "cli/commands.h"

namespace {

struct Subcommand {
    const char* name;
    int (*run)(const kiln::cli::Args&);
    const char* summary;
};

constexpr Subcommand kSubcommands[] = {
    {"info", kiln::cli::cmd_info, "describe a GGUF file (metadata, quant mix, tensors)"},
    {"run", kiln::cli::cmd_run, "generate a continuation of one prompt"},
    {"chat", kiln::cli::cmd_chat, "chat with a model in the terminal"},
    {"bench", kiln::cli::cmd_bench, "measure prompt and generation speed (like llama-bench)"},
    {"perplexity", kiln::cli::cmd_perplexity, "score a text file (llama-perplexity's method)"},
    {"serve", kiln::cli::cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
    {"random-model", kiln::cli::cmd_random_model, "write a Llama GGUF with random weights (7B-shaped by default)"},
};

void print_usage(FILE* out) {
    std::fprintf(out, "usage: kiln <command> [options]\n\ncommands:\n");
    for (const auto& s : kSubcommands) std::fprintf(out, "  %-12s %s\n", s.name, s.summary);
    std::fprintf(out, "\nRun `kiln <command> --help` for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    std::string_view name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        print_usage(stdout);
        return 0;
    }
    for (const auto& s : kSubcommands) {
        if (name != s.name) continue;
        kiln::cli::Args args(argv + 1, argv + argc);
        try {
            return s.run(args);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kiln %s: error: %s\n", s.name, e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "kiln: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
