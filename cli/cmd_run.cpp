// kiln run: one prompt in, the continuation streamed to stdout, speeds to stderr.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/loaded_model.h"
#include "engine/generation.h"

namespace kiln::cli {

int cmd_run(const Args& args) {
    ModelOptions model_options;
    SamplingOptions sampling;
    std::string prompt, prompt_file;
    bool have_prompt = false;
    int n_predict = 128;
    std::vector<std::string> stops;
    bool show_prompt = false;

    OptionParser parser("kiln run -m FILE -p PROMPT [options]");
    parser.add_model_options(model_options);
    parser.value({"-p", "--prompt"}, "TEXT", "the prompt", [&](const std::string& v) { prompt = v; have_prompt = true; });
    parser.value({"-f", "--file"}, "FILE", "read the prompt from a file", [&](const std::string& v) { prompt_file = v; });
    parser.value({"-n", "--n-predict"}, "N", "tokens to generate; -1 = until the model stops (default 128)",
                 [&](const std::string& v) { n_predict = parse_int("--n-predict", v, -1, 1 << 30); });
    parser.value({"--stop"}, "TEXT", "stop when this text appears (repeatable)", [&](const std::string& v) { stops.push_back(v); });
    parser.flag({"--echo"}, "print the prompt before the continuation", [&] { show_prompt = true; });
    parser.add_sampling_options(sampling);
    if (!parser.parse(args)) return 0;

    if (!prompt_file.empty()) {
        std::ifstream in(prompt_file, std::ios::binary);
        if (!in) throw UsageError("cannot read prompt file " + prompt_file);
        std::ostringstream s;
        s << in.rdbuf();
        prompt = s.str();
        have_prompt = true;
    }
    if (!have_prompt) throw UsageError("no prompt given: pass -p TEXT or -f FILE");

    LoadedModel m = load_for_cli(model_options);
    Session session(*m.context, *m.tokenizer);
    GenerationRequest request;
    request.prompt = m.tokenizer->encode(prompt, /*add_special=*/true, /*parse_special=*/false);
    request.max_tokens = n_predict;
    request.sampling = to_sampling_params(sampling);
    request.stop = stops;

    if (show_prompt) {
        std::fwrite(prompt.data(), 1, prompt.size(), stdout);
        std::fflush(stdout);
    }
    GenerationResult r = session.generate(request, [](std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);

    const double pp = r.prompt_seconds > 0 ? double(r.n_prompt_evaluated) / r.prompt_seconds : 0;
    const double tg = r.generation_seconds > 0 ? double(r.tokens.size()) / r.generation_seconds : 0;
    std::fprintf(stderr, "\nprompt: %lld tokens in %.3f s (%.1f tokens/s)\n", (long long)r.n_prompt_evaluated,
                 r.prompt_seconds, pp);
    std::fprintf(stderr, "generation: %zu tokens in %.3f s (%.1f tokens/s), finish: %s\n", r.tokens.size(),
                 r.generation_seconds, tg, finish_reason_name(r.finish));
    std::fprintf(stderr, "backend: %s\n", m.model->placement_summary().c_str());
    return 0;
}

}  // namespace kiln::cli
