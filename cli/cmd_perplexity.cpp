// kiln perplexity: llama-perplexity's method, so figures compare with llama.cpp's.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/loaded_model.h"
#include "engine/perplexity.h"

namespace kiln::cli {

int cmd_perplexity(const Args& args) {
    ModelOptions model_options;
    model_options.n_ctx = 512;
    std::string text_file;

    OptionParser parser("kiln perplexity -m FILE -f TEXT [-c 512] [options]");
    parser.add_model_options(model_options);
    parser.value({"-f", "--file"}, "FILE", "text to score", [&](const std::string& v) { text_file = v; });
    if (!parser.parse(args)) return 0;
    if (text_file.empty()) throw UsageError("no text given: pass -f FILE");

    std::ifstream in(text_file, std::ios::binary);
    if (!in) throw UsageError("cannot read " + text_file);
    std::ostringstream s;
    s << in.rdbuf();

    LoadedModel m = load_for_cli(model_options);
    const std::vector<int32_t> tokens = m.tokenizer->encode(s.str(), /*add_special=*/true, /*parse_special=*/false);
    const int64_t n_ctx = model_options.n_ctx;
    std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %lld\n", tokens.size(),
                 (long long)(int64_t(tokens.size()) / n_ctx), (long long)n_ctx);
    std::optional<int32_t> bos;
    if (m.tokenizer->add_bos()) bos = m.tokenizer->bos();
    PerplexityResult r = perplexity(*m.context, tokens, n_ctx, bos, [](const PerplexityChunk& c) {
        std::fprintf(stderr, "[%lld]%.4f,", (long long)(c.index + 1), c.running_ppl);
        if ((c.index + 1) % 10 == 0 || c.index + 1 == c.n_chunks) std::fputc('\n', stderr);
        std::fflush(stderr);
    });
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_error);
    return 0;
}

}  // namespace kiln::cli
