// kiln bench: llama-bench's measurements (pp = prompt processing of N tokens in one
// batch, tg = generating N tokens one at a time, both from an empty context), plus
// how close decode comes to the machine's memory bandwidth.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/bench_memory.h"
#include "cli/commands.h"
#include "cli/loaded_model.h"
#include "cli/options.h"
#include "engine/context.h"
#include "engine/gpu_devices.h"
#include "formats/gguf_keys.h"
#include "formats/quant_traits.h"
#include "kernels/cpu/cpu_kernels.h"

namespace kiln::cli {

namespace {

struct Stats {
    double mean = 0, stddev = 0;
};

Stats stats(const std::vector<double>& v) {
    Stats s;
    for (double x : v) s.mean += x;
    s.mean /= double(v.size());
    if (v.size() > 1) {
        for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
        s.stddev = std::sqrt(s.stddev / double(v.size() - 1));
    }
    return s;
}

struct ModelFacts {
    std::string description;  // "llama 15.2M F16"
    uint64_t file_bytes = 0;
    uint64_t n_params = 0;
    uint64_t weight_bytes_per_token = 0;  // weights a decode step reads
    std::string type_name;
};

std::string human_count(uint64_t n) {
    char buf[32];
    if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2fB", double(n) / 1e9);
    else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.1fM", double(n) / 1e6);
    else std::snprintf(buf, sizeof buf, "%.1fK", double(n) / 1e3);
    return buf;
}

// The quantization the file was made with, named as llama-bench names it
// (general.file_type, llama.cpp's llama_ftype); empty when absent or unknown.
std::string file_type_name(const GgufFile& file) {
    static const std::map<uint64_t, const char*> kNames = {
        {0, "F32"},           {1, "F16"},           {2, "Q4_0"},          {3, "Q4_1"},          {7, "Q8_0"},
        {8, "Q5_0"},          {9, "Q5_1"},          {10, "Q2_K - Medium"}, {11, "Q3_K - Small"}, {12, "Q3_K - Medium"},
        {13, "Q3_K - Large"}, {14, "Q4_K - Small"}, {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"},
        {18, "Q6_K"},         {21, "Q2_K - Small"}, {32, "BF16"}};
    const auto ftype = file.get_uint(std::string(gguf_keys::kFileType));
    if (!ftype) return "";
    auto it = kNames.find(*ftype);
    return it == kNames.end() ? "" : it->second;
}

ModelFacts describe(const Model& model) {
    ModelFacts f;
    const GgufFile& file = model.gguf();
    f.file_bytes = file.file_size();
    std::map<std::string, uint64_t> elements_by_type;
    const bool tied = file.find_tensor("output.weight") == nullptr;
    for (const auto& t : file.tensors()) {
        f.n_params += uint64_t(t.n_elements());
        // The embedding lookup reads one row per token; every other tensor is read whole.
        if (t.name != "token_embd.weight" || tied) f.weight_bytes_per_token += t.n_bytes;
        if (t.n_dims >= 2) elements_by_type[quant_traits(t.type).name] += uint64_t(t.n_elements());
    }
    f.type_name = file_type_name(file);
    if (f.type_name.empty()) {
        auto dominant = std::max_element(elements_by_type.begin(), elements_by_type.end(),
                                         [](auto& a, auto& b) { return a.second < b.second; });
        f.type_name = dominant == elements_by_type.end() ? "?" : dominant->first;
        for (char& c : f.type_name) c = char(std::toupper(static_cast<unsigned char>(c)));
    }
    std::string upper = f.type_name;
    f.description = model.hparams().arch + " " + human_count(f.n_params) + " " + upper;
    return f;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, std::mt19937& rng) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = int32_t(rng() % uint64_t(n_vocab));
    return t;
}

void print_gpu_bandwidth(const GpuBandwidth& bw, bool json) {
    if (json) {
        std::printf("%s\n", nlohmann::json{{"gpu_read_bytes_per_second", bw.read_bytes_per_second},
                                           {"gpu_copy_bytes_per_second", bw.copy_bytes_per_second},
                                           {"buffer_bytes", bw.buffer_bytes}}.dump(2).c_str());
    } else {
        std::printf("GPU memory: read %.0f GB/s, device-to-device copy %.0f GB/s (read + written; %llu MiB buffers, "
                    "best of 5)\n",
                    bw.read_bytes_per_second / 1e9, bw.copy_bytes_per_second / 1e9,
                    static_cast<unsigned long long>(bw.buffer_bytes >> 20));
    }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int cmd_bench(const Args& args) {
    ModelOptions mo;
    std::vector<int> n_prompts = {512}, n_gens = {128};
    int reps = 5;
    bool json = false, memory_only = false, measure_memory = true;

    OptionParser parser("kiln bench -m FILE [-p 512[,N...]] [-n 128[,N...]] [-t N] [-r 5] [--json] | kiln bench --memory [-t N]");
    parser.add_model_options(mo);
    parser.value({"-p", "--n-prompt"}, "N[,N...]", "prompt tokens of each pp test; 0 = skip (default 512)",
                 [&](const std::string& v) { n_prompts = parse_int_list("--n-prompt", v, 0, 1 << 20); });
    parser.value({"-n", "--n-gen"}, "N[,N...]", "generated tokens of each tg test; 0 = skip (default 128)",
                 [&](const std::string& v) { n_gens = parse_int_list("--n-gen", v, 0, 1 << 20); });
    parser.value({"-r", "--repetitions"}, "N", "repetitions of each test (default 5)",
                 [&](const std::string& v) { reps = parse_int("--repetitions", v, 1, 1000); });
    parser.flag({"--json"}, "print the results as JSON", [&] { json = true; });
    parser.flag({"--memory"}, "only measure the memory read bandwidth (the GPU's with --backend cuda)",
                [&] { memory_only = true; });
    parser.flag({"--no-memory"}, "skip the bandwidth measurement in a model benchmark", [&] { measure_memory = false; });
    if (!parser.parse(args)) return 0;

    const int n_threads = mo.n_threads > 0 ? mo.n_threads : default_thread_count();
    if (memory_only && mo.backend == "vulkan")
        throw UsageError("kiln bench --memory measures the CPU's memory or, with --backend cuda, an NVIDIA GPU's; "
                         "not a Vulkan device's");
    if (memory_only && mo.backend == "cuda") {
        const auto gbw = measure_gpu_bandwidth("cuda", std::max(mo.device, 0));
        if (!gbw) throw UsageError("this build of kiln has no CUDA backend");
        print_gpu_bandwidth(*gbw, json);
        return 0;
    }
    std::optional<BandwidthResult> bw;
    const int max_prompt = *std::max_element(n_prompts.begin(), n_prompts.end());
    const int max_gen = *std::max_element(n_gens.begin(), n_gens.end());
    if (memory_only || (measure_memory && max_gen > 0 && mo.backend != "cuda" && mo.backend != "vulkan"))
        bw = measure_read_bandwidth(n_threads);
    if (memory_only) {
        if (json) {
            std::printf("%s\n", nlohmann::json{{"memory_read_bytes_per_second", bw->bytes_per_second},
                                               {"threads", n_threads},
                                               {"buffer_bytes", bw->buffer_bytes}}.dump(2).c_str());
        } else {
            std::printf("memory read bandwidth: %.2f GB/s (%d threads, %zu MiB buffer, best of 5)\n",
                        bw->bytes_per_second / 1e9, n_threads, bw->buffer_bytes >> 20);
        }
        return 0;
    }
    if (mo.model_path.empty()) throw UsageError("no model given: pass -m FILE.gguf (or --memory)");
    LoadOptions lo = to_load_options(mo);
    lo.n_threads = n_threads;
    auto model = load_model(mo.model_path, lo);
    // "auto" resolved: the backend the output layers run on names the run.
    const std::string& where = model->placement_summary();
    const bool on_gpu = where.rfind("cpu", 0) != 0;
    // The CPU's kernels are named by their instruction set, as the run chose it.
    const std::string backend = on_gpu ? where.substr(0, where.find(' ')) : std::string("cpu ") + cpu::cpu_kernels().isa;
    const ModelFacts facts = describe(*model);
    // Decode on a GPU that holds the whole model is bound by the GPU's memory.
    std::optional<GpuBandwidth> gpu_bw;
    if (const auto dev = model->whole_on_cuda(); dev && measure_memory && max_gen > 0)
        gpu_bw = measure_gpu_bandwidth("cuda", *dev);
    ContextOptions co;
    co.n_ctx = std::max(std::max(max_prompt, max_gen), 16);
    co.n_batch = std::max(mo.n_batch, 1);
    Context ctx(model, co);
    std::mt19937 rng(1234);
    const int64_t n_vocab = model->n_vocab();

    nlohmann::json results = nlohmann::json::array();
    auto report = [&](const std::string& test, int n_tokens, const std::vector<double>& seconds) {
        std::vector<double> tps;
        for (double s : seconds) tps.push_back(double(n_tokens) / s);
        const Stats st = stats(tps);
        nlohmann::json r = {{"model_file", mo.model_path}, {"model", facts.description},
                            {"model_size", facts.file_bytes}, {"model_n_params", facts.n_params},
                            {"backend", backend}, {"placement", where}, {"threads", n_threads}, {"n_batch", co.n_batch},
                            {"test", test}, {"n_tokens", n_tokens}, {"avg_ts", st.mean}, {"stddev_ts", st.stddev},
                            {"samples_ts", tps}};
        if (test.rfind("tg", 0) == 0) {
            // KV read per step grows with the position; the mean over the run is at n/2.
            const auto& hp = model->hparams();
            const double kv_bytes = double(hp.n_layer) * 2.0 * double(hp.n_kv_dim()) * 2.0 /*F16*/ * (n_tokens / 2.0);
            const double per_token = double(facts.weight_bytes_per_token) + kv_bytes;
            r["bytes_per_token"] = per_token;
            r["achieved_bytes_per_second"] = per_token * st.mean;
            if (bw && !on_gpu) {  // host bandwidth says nothing of a GPU's
                r["memory_bytes_per_second"] = bw->bytes_per_second;
                r["bandwidth_fraction"] = per_token * st.mean / bw->bytes_per_second;
            }
            if (gpu_bw) {  // the read rate is the limit: decode only reads
                r["memory_bytes_per_second"] = gpu_bw->read_bytes_per_second;
                r["bandwidth_fraction"] = per_token * st.mean / gpu_bw->read_bytes_per_second;
                r["gpu_copy_bytes_per_second"] = gpu_bw->copy_bytes_per_second;
            }
        }
        results.push_back(r);
    };

    for (const int n_prompt : n_prompts) {
        if (n_prompt == 0) continue;
        std::vector<double> times;
        for (int rep = -1; rep < reps; ++rep) {  // rep -1 warms caches and pages in the weights
            const auto tokens = random_tokens(n_prompt, n_vocab, rng);
            ctx.reset();
            const auto t0 = std::chrono::steady_clock::now();
            ctx.eval(tokens);
            if (rep >= 0) times.push_back(seconds_since(t0));
        }
        report("pp" + std::to_string(n_prompt), n_prompt, times);
    }
    for (const int n_gen : n_gens) {
        if (n_gen == 0) continue;
        std::vector<double> times;
        for (int rep = -1; rep < reps; ++rep) {
            const auto tokens = random_tokens(n_gen, n_vocab, rng);
            ctx.reset();
            const auto t0 = std::chrono::steady_clock::now();
            for (int32_t t : tokens) ctx.eval(std::span<const int32_t>(&t, 1));
            if (rep >= 0) times.push_back(seconds_since(t0));
        }
        report("tg" + std::to_string(n_gen), n_gen, times);
    }

    if (json) {
        std::printf("%s\n", results.dump(2).c_str());
        return 0;
    }
    std::printf("| %-28s | %10s | %8s | %-10s | %7s | %8s | %20s |\n", "model", "size", "params", "backend", "threads",
                "test", "t/s");
    std::printf("| %.28s | %.10s | %.8s | %.10s | %.7s | %.8s | %.20s |\n", "------------------------------",
                "------------", "----------", "------------", "---------", "----------", "----------------------");
    for (const auto& r : results) {
        char size[32], tps[48];
        std::snprintf(size, sizeof size, "%.2f MiB", double(facts.file_bytes) / (1 << 20));
        std::snprintf(tps, sizeof tps, "%.2f ± %.2f", r["avg_ts"].get<double>(), r["stddev_ts"].get<double>());
        std::printf("| %-28s | %10s | %8s | %-10s | %7d | %8s | %20s |\n", facts.description.c_str(), size,
                    human_count(facts.n_params).c_str(), backend.c_str(), n_threads,
                    r["test"].get<std::string>().c_str(), tps);
    }
    for (const auto& r : results) {
        if (!r.contains("bytes_per_token")) continue;
        std::printf("\n%s: %.1f MiB read per token (weights + KV) -> %.2f GB/s",
                    r["test"].get<std::string>().c_str(), r["bytes_per_token"].get<double>() / (1 << 20),
                    r["achieved_bytes_per_second"].get<double>() / 1e9);
        if (r.contains("memory_bytes_per_second"))
            std::printf(" = %.0f%% of the measured %.2f GB/s %smemory read bandwidth (limit %.1f t/s)",
                        100.0 * r["bandwidth_fraction"].get<double>(),
                        r["memory_bytes_per_second"].get<double>() / 1e9, gpu_bw ? "GPU " : "",
                        r["memory_bytes_per_second"].get<double>() / r["bytes_per_token"].get<double>());
        if (r.contains("gpu_copy_bytes_per_second"))
            std::printf("; %.0f%% of the device-to-device copy rate, %.0f GB/s",
                        100.0 * r["achieved_bytes_per_second"].get<double>() /
                            r["gpu_copy_bytes_per_second"].get<double>(),
                        r["gpu_copy_bytes_per_second"].get<double>() / 1e9);
        std::printf("\n");
    }
    return 0;
}

}  // namespace kiln::cli
