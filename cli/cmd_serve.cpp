// kiln serve: the OpenAI-compatible HTTP server (server/) over the continuous-batching scheduler.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/loaded_model.h"
#include "cli/options.h"
#include "server/server.h"

namespace kiln::cli {

namespace {
std::string read_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(std::string("cannot read ") + what + " " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}
}  // namespace

int cmd_serve(const Args& args) {
    ModelOptions model_options;
    SamplingOptions sampling;
    server::ServerOptions server_options;
    int n_parallel = 4;
    int max_queue = 64;
    std::string chat_template_file, alias;

    OptionParser parser("kiln serve -m FILE [options]");
    parser.add_model_options(model_options);
    parser.value({"--host"}, "ADDR", "address to listen on (default 127.0.0.1; others need --api-key)",
                 [&](const std::string& v) { server_options.host = v; });
    parser.value({"--port"}, "N", "TCP port; 0 = any free port, printed at start (default 8080)",
                 [&](const std::string& v) { server_options.port = parse_int("--port", v, 0, 65535); });
    parser.value({"--api-key"}, "KEY", "require 'Authorization: Bearer KEY' on every route but /health",
                 [&](const std::string& v) { server_options.api_key = v; });
    parser.value({"--cors"}, "ORIGIN", "allow browser requests from ORIGIN (default: no CORS headers)",
                 [&](const std::string& v) { server_options.cors_origin = v; });
    parser.value({"-np", "--parallel"}, "N", "requests decoded together, each in its own slot (default 4)",
                 [&](const std::string& v) { n_parallel = parse_int("--parallel", v, 1, 63); });
    parser.value({"--queue"}, "N", "requests that may wait for a slot before 503 (default 64)",
                 [&](const std::string& v) { max_queue = parse_int("--queue", v, 0, 1 << 20); });
    parser.value({"--max-body"}, "BYTES", "largest request body accepted (default 8 MiB)", [&](const std::string& v) {
        server_options.max_body_bytes = size_t(parse_int("--max-body", v, 1024, 1 << 30));
    });
    parser.value({"--chat-template"}, "FILE", "Jinja chat template to use instead of the GGUF's tokenizer.chat_template",
                 [&](const std::string& v) { chat_template_file = v; });
    parser.value({"--alias"}, "NAME", "model id in the API (default: the file name without .gguf)",
                 [&](const std::string& v) { alias = v; });
    parser.add_sampling_options(sampling);
    if (!parser.parse(args)) return 0;
    if (model_options.model_path.empty()) throw UsageError("no model given: pass -m FILE.gguf");
    if (!std::filesystem::exists(model_options.model_path))
        throw UsageError("model file not found: " + model_options.model_path);
    std::optional<std::string> template_source;
    if (!chat_template_file.empty()) template_source = read_file(chat_template_file, "chat template file");

    // SIGINT/SIGTERM are taken by one thread (sigwait), so every other thread runs with them blocked.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    server::Server srv(server_options);
    srv.bind();
    std::printf("kiln serve: listening on http://%s:%d (loading %s)\n", server_options.host.c_str(), srv.port(),
                model_options.model_path.c_str());
    std::fflush(stdout);

    std::thread signal_thread([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        srv.stop();
    });
    signal_thread.detach();

    // Tests make loading slow to see /health answer 503 meanwhile.
    if (const char* delay = std::getenv("KILN_SERVE_TEST_LOAD_DELAY_MS"))
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));

    auto engine = std::make_shared<server::Engine>();
    const LoadOptions load = to_load_options(model_options);
    engine->model = load_model(model_options.model_path, load);
    engine->tokenizer = Tokenizer::from_gguf(engine->model->gguf());
    const std::string source = template_source ? *template_source : engine->model->gguf().get_string("tokenizer.chat_template").value_or("");
    if (!source.empty()) {
        engine->chat_template = ChatTemplate::parse(source);
        engine->chat_template_origin = template_source ? chat_template_file : "the GGUF's tokenizer.chat_template";
    } else {
        std::fprintf(stderr, "kiln serve: %s has no chat template: /v1/chat/completions will answer 400 (use --chat-template FILE)\n",
                     model_options.model_path.c_str());
    }
    engine->model_id = alias.empty() ? std::filesystem::path(model_options.model_path).stem().string() : alias;
    engine->sampling_defaults = to_sampling_params(sampling);
    engine->created = int64_t(std::time(nullptr));
    SchedulerOptions so;
    so.n_parallel = n_parallel;
    so.n_ctx_slot = model_options.n_ctx > 0 ? model_options.n_ctx : default_context(*engine->model);
    so.n_batch = model_options.n_batch;
    so.max_queue = size_t(max_queue);
    engine->scheduler = std::make_unique<Scheduler>(engine->model, *engine->tokenizer, so);
    srv.set_engine(engine);
    std::printf("kiln serve: ready: model '%s', %d slots of %lld tokens, on %s\n", engine->model_id.c_str(), n_parallel,
                (long long)so.n_ctx_slot, engine->model->placement_summary().c_str());
    std::fflush(stdout);
    srv.run();
    std::printf("kiln serve: stopped\n");
    return 0;
}

}  // namespace kiln::cli
