#pragma once
// The one definition of the options shared by `run`, `chat`, `serve`, `bench`,
// `perplexity`: each subcommand declares which groups it accepts and adds its own.
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace kiln::cli {

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ModelOptions {
    std::string model_path;     // -m
    int n_threads = 0;          // -t; 0 = number of physical cores
    int n_ctx = 0;              // -c; 0 = min(model's context length, 4096)
    int n_batch = 512;          // -b
    std::string backend = "auto";  // --backend auto|cpu|cuda|vulkan
    int n_gpu_layers = -1;      // -ngl; -1 = all (auto: as many as fit)
    int device = -1;            // --device; -1 = the first (auto: the one it picks)
};

struct SamplingOptions {
    float temperature = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    float presence_penalty = 0.0f;
    float frequency_penalty = 0.0f;
    std::optional<uint64_t> seed;  // none = random
};

// A parser built from option specs. Each spec names its flags and how to apply a value.
class OptionParser {
public:
    explicit OptionParser(std::string usage_line);

    void flag(std::vector<std::string> names, std::string help, std::function<void()> apply);
    void value(std::vector<std::string> names, std::string metavar, std::string help,
               std::function<void(const std::string&)> apply);

    void add_model_options(ModelOptions& o);
    void add_sampling_options(SamplingOptions& o);

    // Parses args[1..]; returns false when --help was printed (the caller exits 0).
    // Unknown options, missing values and bad numbers throw UsageError.
    bool parse(const Args& args, std::vector<std::string>* positional = nullptr);
    std::string help() const;

private:
    struct Spec {
        std::vector<std::string> names;
        std::string metavar;  // empty for flags
        std::string help;
        std::function<void(const std::string&)> apply;
    };
    std::string usage_;
    std::vector<Spec> specs_;
};

// Strict number parsing for option values: the whole string must be a number in range.
int parse_int(const std::string& option, const std::string& text, int min, int max);
// A comma-separated list of such numbers ("16,64,512", as llama-bench takes them).
std::vector<int> parse_int_list(const std::string& option, const std::string& text, int min, int max);
float parse_float(const std::string& option, const std::string& text, float min, float max);
uint64_t parse_u64(const std::string& option, const std::string& text);

int default_thread_count();  // physical cores

}  // namespace kiln::cli
