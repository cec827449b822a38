// kiln random-model: a Llama GGUF with random weights in a llama-quantize mix
// and the vocabulary of a given file, for benchmarking at sizes (7B by default)
// without downloading a model.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "formats/gguf.h"
#include "models/random_llama.h"

namespace kiln::cli {

namespace {

std::string mix_names() {
    std::string s;
    for (const QuantMix& m : all_quant_mixes()) {
        if (!s.empty()) s += ", ";
        s += m.name;
    }
    s += " (q4_k = q4_k_m, q5_k = q5_k_m, as in llama-quantize)";
    return s;
}

// Progress on stderr: redrawn in place on a terminal, a line per 10% otherwise.
class ProgressLine {
public:
    void operator()(uint64_t done, uint64_t total) {
        const int percent = total ? int(done * 100 / total) : 100;
        const int step = tty_ ? 1 : 10;
        if (percent / step == last_ / step) return;
        last_ = percent;
        std::fprintf(stderr, tty_ ? "\r  %3d%%  %.2f / %.2f GB" : "  %3d%%  %.2f / %.2f GB\n", percent, double(done) / 1e9,
                     double(total) / 1e9);
        if (tty_ && percent == 100) std::fputc('\n', stderr);
    }

private:
    bool tty_ = ::isatty(2) != 0;
    int last_ = -1;
};

}  // namespace

int cmd_random_model(const Args& args) {
    std::string vocab_path, out_path, type_name;
    RandomLlamaSpec spec;
    RandomLlamaShape& s = spec.shape;
    OptionParser p("kiln random-model --vocab FILE.gguf --type TYPE -o OUT.gguf [shape options]");
    p.value({"--vocab"}, "FILE", "GGUF file whose tokenizer (every tokenizer.* key) the model gets",
            [&](const std::string& v) { vocab_path = v; });
    p.value({"--type"}, "TYPE", "quant mix: " + mix_names(), [&](const std::string& v) { type_name = v; });
    p.value({"-o", "--output"}, "FILE", "GGUF file to write", [&](const std::string& v) { out_path = v; });
    p.value({"--n-layer"}, "N", "transformer blocks (default 32)",
            [&](const std::string& v) { s.n_layer = parse_int("--n-layer", v, 1, 4096); });
    p.value({"--n-embd"}, "N", "embedding size (default 4096)",
            [&](const std::string& v) { s.n_embd = parse_int("--n-embd", v, 1, 1 << 20); });
    p.value({"--n-ff"}, "N", "feed-forward size (default 11008)",
            [&](const std::string& v) { s.n_ff = parse_int("--n-ff", v, 1, 1 << 20); });
    p.value({"--n-head"}, "N", "attention heads (default 32)",
            [&](const std::string& v) { s.n_head = parse_int("--n-head", v, 1, 4096); });
    p.value({"--n-head-kv"}, "N", "key/value heads (default: n-head; fewer for GQA)",
            [&](const std::string& v) { s.n_head_kv = parse_int("--n-head-kv", v, 1, 4096); });
    p.value({"--ctx"}, "N", "training context length written to the file (default 4096)",
            [&](const std::string& v) { s.n_ctx = parse_int("--ctx", v, 1, 1 << 24); });
    p.value({"--seed"}, "S", "random seed; the same seed gives the same file (default 0)",
            [&](const std::string& v) { spec.seed = parse_u64("--seed", v); });
    if (!p.parse(args)) return 0;
    if (vocab_path.empty()) throw UsageError("--vocab FILE is required: a GGUF model whose vocabulary to copy (see --help)");
    if (type_name.empty()) throw UsageError("--type is required: one of " + mix_names());
    if (out_path.empty()) throw UsageError("-o FILE is required: where to write the model");
    spec.mix = find_quant_mix(type_name);
    if (!spec.mix) throw UsageError("--type: unknown quant mix '" + type_name + "' (expected " + mix_names() + ")");

    const GgufFile vocab = GgufFile::open(vocab_path);
    ProgressLine progress;
    const GgufWriter writer = random_llama_writer(vocab, spec, std::ref(progress));
    const uint64_t size = writer.file_size();
    std::fprintf(stderr,
                 "writing %s: random llama, %s, n_layer %lld, n_embd %lld, n_ff %lld, n_head %lld, n_head_kv %lld, "
                 "vocab of %s, %.2f GB\n",
                 out_path.c_str(), spec.mix->name, (long long)s.n_layer, (long long)s.n_embd, (long long)s.n_ff,
                 (long long)s.n_head, (long long)(s.n_head_kv ? s.n_head_kv : s.n_head), vocab_path.c_str(), double(size) / 1e9);
    const auto t0 = std::chrono::steady_clock::now();
    writer.write(out_path);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "wrote %s: %llu bytes (%.2f GiB) in %.1f s\n", out_path.c_str(), (unsigned long long)size,
                 double(size) / double(1ull << 30), seconds);
    return 0;
}

}  // namespace kiln::cli
