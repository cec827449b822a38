#include "cli/options.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace kiln::cli {

OptionParser::OptionParser(std::string usage_line) : usage_(std::move(usage_line)) {}

void OptionParser::flag(std::vector<std::string> names, std::string help, std::function<void()> apply) {
    specs_.push_back({std::move(names), "", std::move(help), [apply](const std::string&) { apply(); }});
}

void OptionParser::value(std::vector<std::string> names, std::string metavar, std::string help,
                         std::function<void(const std::string&)> apply) {
    specs_.push_back({std::move(names), std::move(metavar), std::move(help), std::move(apply)});
}

void OptionParser::add_model_options(ModelOptions& o) {
    value({"-m", "--model"}, "FILE", "GGUF model file", [&o](const std::string& v) { o.model_path = v; });
    value({"-t", "--threads"}, "N", "CPU threads (default: physical cores)",
          [&o](const std::string& v) { o.n_threads = parse_int("--threads", v, 1, 1024); });
    value({"-c", "--ctx-size"}, "N", "context size in tokens (default: the model's, at most 4096)",
          [&o](const std::string& v) { o.n_ctx = parse_int("--ctx-size", v, 1, 1 << 24); });
    value({"-b", "--batch-size"}, "N", "tokens per forward pass when processing a prompt (default 512)",
          [&o](const std::string& v) { o.n_batch = parse_int("--batch-size", v, 1, 1 << 16); });
    value({"--backend"}, "NAME",
          "compute backend: auto, cpu, cuda or vulkan (default auto: a GPU when there is one, else the CPU)",
          [&o](const std::string& v) {
              if (v != "auto" && v != "cpu" && v != "cuda" && v != "vulkan")
                  throw UsageError("--backend: unknown backend '" + v + "' (expected auto, cpu, cuda or vulkan)");
              o.backend = v;
          });
    value({"-ngl", "--n-gpu-layers"}, "N",
          "layers to offload to the GPU, 0 = none (default: all, or with --backend auto as many as fit)",
          [&o](const std::string& v) { o.n_gpu_layers = parse_int("--n-gpu-layers", v, 0, 1 << 20); });
    value({"--device"}, "N", "GPU to use, as numbered by `kiln info --devices` (default: the first)",
          [&o](const std::string& v) { o.device = parse_int("--device", v, 0, 1 << 10); });
}

void OptionParser::add_sampling_options(SamplingOptions& o) {
    value({"--temp"}, "T", "temperature; 0 = greedy (default 0.8)",
          [&o](const std::string& v) { o.temperature = parse_float("--temp", v, 0.0f, 100.0f); });
    value({"--top-k"}, "N", "keep the N most likely tokens; 0 = off (default 40)",
          [&o](const std::string& v) { o.top_k = parse_int("--top-k", v, 0, 1 << 30); });
    value({"--top-p"}, "P", "nucleus sampling; 1 = off (default 0.95)",
          [&o](const std::string& v) { o.top_p = parse_float("--top-p", v, 0.0f, 1.0f); });
    value({"--min-p"}, "P", "drop tokens below P x the top probability; 0 = off (default 0.05)",
          [&o](const std::string& v) { o.min_p = parse_float("--min-p", v, 0.0f, 1.0f); });
    value({"--repeat-penalty"}, "X", "penalise repeats of the last tokens; 1 = off (default 1.0)",
          [&o](const std::string& v) { o.repeat_penalty = parse_float("--repeat-penalty", v, 0.0f, 100.0f); });
    value({"--repeat-last-n"}, "N", "tokens the penalties look back over (default 64)",
          [&o](const std::string& v) { o.repeat_last_n = parse_int("--repeat-last-n", v, 0, 1 << 24); });
    value({"--presence-penalty"}, "X", "OpenAI presence penalty (default 0)",
          [&o](const std::string& v) { o.presence_penalty = parse_float("--presence-penalty", v, -2.0f, 2.0f); });
    value({"--frequency-penalty"}, "X", "OpenAI frequency penalty (default 0)",
          [&o](const std::string& v) { o.frequency_penalty = parse_float("--frequency-penalty", v, -2.0f, 2.0f); });
    value({"--seed"}, "S", "random seed (default: random)",
          [&o](const std::string& v) { o.seed = parse_u64("--seed", v); });
}

bool OptionParser::parse(const Args& args, std::vector<std::string>* positional) {
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h" || a == "--help") {
            std::fputs(help().c_str(), stdout);
            return false;
        }
        std::string name = a, inline_value;
        bool has_inline = false;
        if (a.rfind("--", 0) == 0) {
            if (auto eq = a.find('='); eq != std::string::npos) {
                name = a.substr(0, eq);
                inline_value = a.substr(eq + 1);
                has_inline = true;
            }
        }
        const Spec* spec = nullptr;
        for (const auto& s : specs_)
            for (const auto& n : s.names)
                if (n == name) spec = &s;
        if (!spec) {
            if (!a.empty() && a[0] == '-' && a != "-") throw UsageError("unknown option '" + a + "' (see --help)");
            if (!positional) throw UsageError("unexpected argument '" + a + "' (see --help)");
            positional->push_back(a);
            continue;
        }
        if (spec->metavar.empty()) {
            if (has_inline) throw UsageError("option " + name + " takes no value");
            spec->apply("");
            continue;
        }
        if (!has_inline) {
            if (i + 1 >= args.size()) throw UsageError("option " + name + " needs a value (" + spec->metavar + ")");
            inline_value = args[++i];
        }
        spec->apply(inline_value);
    }
    return true;
}

std::string OptionParser::help() const {
    std::ostringstream out;
    out << "usage: " << usage_ << "\n\noptions:\n";
    for (const auto& s : specs_) {
        std::string names;
        for (const auto& n : s.names) names += (names.empty() ? "" : ", ") + n;
        if (!s.metavar.empty()) names += " " + s.metavar;
        char line[512];
        std::snprintf(line, sizeof line, "  %-28s %s\n", names.c_str(), s.help.c_str());
        out << line;
    }
    out << "  -h, --help                   show this help\n";
    return out.str();
}

int parse_int(const std::string& option, const std::string& text, int min, int max) {
    long long v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
        throw UsageError(option + ": '" + text + "' is not a whole number");
    if (v < min || v > max)
        throw UsageError(option + ": " + text + " is out of range [" + std::to_string(min) + ", " +
                         std::to_string(max) + "]");
    return int(v);
}

std::vector<int> parse_int_list(const std::string& option, const std::string& text, int min, int max) {
    std::vector<int> out;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        out.push_back(parse_int(option, text.substr(start, comma == std::string::npos ? comma : comma - start), min, max));
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

float parse_float(const std::string& option, const std::string& text, float min, float max) {
    float v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(v))
        throw UsageError(option + ": '" + text + "' is not a number");
    if (v < min || v > max) {
        std::ostringstream m;
        m << option << ": " << text << " is out of range [" << min << ", " << max << "]";
        throw UsageError(m.str());
    }
    return v;
}

uint64_t parse_u64(const std::string& option, const std::string& text) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
        throw UsageError(option + ": '" + text + "' is not a non-negative whole number");
    return v;
}

int default_thread_count() {
    // Count distinct (physical id, core id) pairs: hyper-threads share a core's
    // execution units, and the matmuls gain nothing from them.
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;
    std::string line, physical = "0";
    while (std::getline(cpuinfo, line)) {
        auto value = [&] { auto p = line.find(':'); return p == std::string::npos ? std::string() : line.substr(p + 1); };
        if (line.rfind("physical id", 0) == 0) physical = value();
        else if (line.rfind("core id", 0) == 0) cores.insert({physical, value()});
    }
    if (!cores.empty()) return int(cores.size());
    unsigned n = std::thread::hardware_concurrency();
    return n ? int(n) : 1;
}

}  // namespace kiln::cli
